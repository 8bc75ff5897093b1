""" "Outputs reproduced": after a commit, run a version's sample inputs through ``zoo.runtime``
and record whether its sample outputs come out (``ZOO_VERIFY_OUTPUTS``).

The check never holds up a commit: it starts in a background thread once the commit's
transaction is durable, reads the blobs from storage into a temporary folder, compares with
:func:`zoo.verify.compare_folder` (the comparison ``zoo verify`` makes, so hub and client agree),
and writes ``meta["outputs_reproduced"]`` and ``meta["outputs_check"]`` in a transaction of
its own.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app.orm import File, Version, VersionStatus
from app.storage import Storage, blob_key

__all__ = ["check_version", "record", "schedule"]

log = logging.getLogger(__name__)

# One check at a time per process: the runtime uses every core, and a burst of commits should
# queue rather than starve the API.
_ONE_AT_A_TIME = threading.Semaphore(1)
_SAMPLE_DIRS = ("sample-inputs", "sample-outputs")


def schedule(
    session: Session, factory: sessionmaker[Session], storage: Storage, version_id: int
) -> None:
    """Check ``version_id`` in the background once ``session`` commits (never if it rolls back)."""

    def start(_: Session) -> None:
        thread = threading.Thread(
            target=check_version,
            args=(factory, storage, version_id),
            name=f"zoo-reproduce-{version_id}",
            daemon=True,
        )
        thread.start()

    event.listen(session, "after_commit", start, once=True)


def _wanted(paths: list[str]) -> list[str]:
    """The files the check needs: top-level ones (model.onnx and its external data) and the
    sample npz files; not training/ or deployment/ copies, which can be large."""
    return [
        p
        for p in paths
        if "/" not in p or (PurePosixPath(p).parts[0] in _SAMPLE_DIRS and p.endswith(".npz"))
    ]


def _materialize(storage: Storage, files: list[tuple[str, str]], root: Path) -> None:
    for path, sha in files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        key = blob_key(sha)
        local = storage.local_path(key)
        if local is not None:
            shutil.copyfile(local, target)
            continue
        with target.open("wb") as out:
            for chunk in storage.read_range(key):
                out.write(chunk)


def _main_onnx(paths: list[str]) -> str | None:
    top = sorted(p for p in paths if "/" not in p and p.endswith(".onnx"))
    return "model.onnx" if "model.onnx" in top else (top[0] if top else None)


def check_version(factory: sessionmaker[Session], storage: Storage, version_id: int) -> None:
    """Run the check and record it; any error is logged and recorded, never raised (this runs
    in a thread nobody joins)."""
    from zoo.verify import OutputComparison, compare_folder

    with _ONE_AT_A_TIME:
        try:
            with factory() as s:
                status = s.scalar(select(Version.status).where(Version.id == version_id))
                rows = s.execute(
                    select(File.path, File.sha256).where(File.version_id == version_id)
                ).all()
            if status != VersionStatus.READY:
                return
            files = [(str(p), str(h)) for p, h in rows]
            wanted = _wanted([p for p, _ in files])
            onnx_path = _main_onnx(wanted)
            samples = [p for p in wanted if "/" in p]
            if onnx_path is None or not samples:
                result = OutputComparison(None, "no model.onnx with sample inputs and outputs")
            else:
                with tempfile.TemporaryDirectory(prefix="zoo-reproduce-") as tmp:
                    _materialize(storage, [f for f in files if f[0] in wanted], Path(tmp))
                    result = compare_folder(tmp, onnx_path)
            record(factory, version_id, result.ok, result.to_dict())
        except Exception as e:  # a background check must not die silently
            log.exception("outputs check of version %s failed", version_id)
            try:
                detail = f"the check could not run: {type(e).__name__}: {e}"
                record(factory, version_id, None, {"ok": None, "detail": detail[:500]})
            except Exception:  # the database itself may be gone (shutdown)
                log.exception("could not record the outputs check of version %s", version_id)


def record(
    factory: sessionmaker[Session], version_id: int, ok: bool | None, check: dict[str, Any]
) -> None:
    """Write the result into the version's meta in a short transaction of its own.

    ``outputs_reproduced`` is set only when there was something to compare (True/False).
    """
    with factory() as s:
        version = s.get(Version, version_id, with_for_update=True)
        if version is None:
            return
        meta = dict(version.meta or {})  # a new dict: the JSON column sees the change
        meta["outputs_check"] = check
        if ok is not None:
            meta["outputs_reproduced"] = ok
        else:
            meta.pop("outputs_reproduced", None)
        version.meta = meta
        s.commit()
