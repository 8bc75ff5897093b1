"""Download endpoint for one file of a version."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.responses import FileResponse

from app.auth import DbSession, OptionalPrincipal
from app.config import Settings
from app.deps import SettingsDep, StorageDep
from app.errors import (
    FileNotFound,
    ModelNotFound,
    RangeNotSatisfiable,
    VersionNotFound,
    error_responses,
    render_error,
)
from app.models.service import get_model
from app.orm import Model
from app.storage import Storage, blob_key
from app.versions import service

router = APIRouter(tags=["files"])


class BlobFileResponse(FileResponse):
    """FileResponse with 1 MiB reads: 16x fewer syscalls and event-loop hops than the default."""

    chunk_size = 1024 * 1024


def _counts_as_download(request: Request) -> bool:
    # A resume (Range not starting at 0) or a HEAD is part of a fetch already counted.
    if request.method != "GET":
        return False
    rng = request.headers.get("range", "").replace(" ", "")
    return not rng or rng.startswith("bytes=0-")


def _unsatisfiable_range(request: Request, size: int) -> str | None:
    """The Range spec if it asks for bytes past the end of the file (starlette's rule), else None.

    Checked here so the 416 carries the JSON error body; satisfiable ranges stream as usual.
    """
    header = request.headers.get("range")
    if not header or request.headers.get("if-range") is not None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes":
        return None
    for part in spec.split(","):
        first, dash, last = (p.strip() for p in part.strip().partition("-"))
        if not dash:
            continue
        if first.isdigit():
            start = int(first)
        elif last.isdigit():
            start = max(size - int(last), 0)
        else:
            continue
        if start >= size:
            return spec.strip()
    return None


def cache_control(model: Model, *, pinned: bool) -> str:
    """``Cache-Control`` for a download: a numbered version never changes, an alias moves.

    Only a public model's bytes may sit in shared caches: a private model's were fetched with
    a token, and ``public`` would let a proxy or CDN hand them to callers who may not see them.
    """
    if not pinned:
        return "no-cache"
    scope = "public" if model.visibility == "public" else "private"
    return f"{scope}, max-age=31536000, immutable"


_PATH = "/models/{namespace}/{name}/versions/{ref}/files/{path:path}"
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/octet-stream": {}}},
    206: {"description": "Partial content (Range)"},
    302: {"description": "Redirect to a short-lived presigned URL (S3 backend)"},
    416: {"description": "Range not satisfiable"},
    **error_responses(ModelNotFound, VersionNotFound, FileNotFound),
}


@router.head(_PATH, operation_id="head_file", responses=_RESPONSES)
@router.get(_PATH, operation_id="download_file", responses=_RESPONSES)
def download_file(
    namespace: str,
    name: str,
    ref: str,
    path: str,
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """Download one file. ``ETag`` is its sha256 and ``X-Zoo-Version`` the resolved version.
    On S3 a GET redirects to a presigned URL; on disk it streams with Range support."""
    model = get_model(session, principal, namespace, name)
    version = service.get_version(session, model, ref)
    match = [f for f in version.files if f.path == path]
    if not match:
        raise FileNotFound(
            f"version {version.number} of '{namespace}/{name}' has no file '{path[:300]}'",
            details={"path": path[:300]},
        )
    file = match[0]
    headers = {
        "ETag": f'"{file.sha256}"',
        "X-Zoo-Version": str(version.number),
        "X-Zoo-Sha256": file.sha256,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control(model, pinned=ref.isdigit()),
    }
    response = blob_response(
        request, storage, settings, sha256=file.sha256, size=file.size, name=path, headers=headers
    )
    # Counted only when the fetch is granted (a 416 fetched nothing).
    ok = response.status_code < 400
    if ok and _counts_as_download(request) and path == service.primary_file(version):
        service.count_download(session, version)
    return response


def blob_response(
    request: Request,
    storage: Storage,
    settings: Settings,
    *,
    sha256: str,
    size: int,
    name: str,
    headers: dict[str, str],
    media_type: str = "application/octet-stream",
) -> Response:
    """Serve a stored blob: stream it with Range support from disk, or (S3) answer HEAD with
    its length and redirect GET to a short-lived presigned URL. ``name`` is the path shown in
    errors; its last segment is the download's file name."""
    key = blob_key(sha256)
    local = storage.local_path(key)
    bad_range = _unsatisfiable_range(request, size) if local is not None else None
    if bad_range is not None:
        return render_error(
            RangeNotSatisfiable.status,
            RangeNotSatisfiable.code,
            f"range '{bad_range[:100]}' starts past the end of '{name[:300]}' ({size} bytes)",
            {"range": bad_range[:100], "size": size},
            headers={"Content-Range": f"bytes */{size}"},
        )
    filename = PurePosixPath(name).name
    if local is not None:
        return BlobFileResponse(local, headers=headers, media_type=media_type, filename=filename)
    if request.method == "HEAD":
        headers = {**headers, "Content-Length": str(size)}
        return Response(status_code=200, headers=headers, media_type=media_type)
    url = storage.presign_get(
        key, expires=settings.presign_expiry_seconds, filename=filename, content_type=media_type
    )
    assert url is not None  # a backend without local paths presigns
    # The redirect is a grant that expires in minutes: no cache may keep (or share) it.
    headers = {**headers, "Cache-Control": "no-store"}
    return RedirectResponse(url, status_code=302, headers=headers)
