"""Publishing a model folder: manifest, create the model if missing, upload, commit.

The hub answers the manifest with, per distinct blob, "stored" (skipped: it has those bytes)
or where to PUT it: its own URL (send the token) or a presigned one (never send the token;
big blobs come as multipart part URLs whose ETags go back with the commit). Any failure
before the commit aborts the upload, so no half version lingers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import stubs
from zoo._cache import hash_file
from zoo._errors import ConflictError, LocalModelError, ModelExistsError, NetworkError, ZooError
from zoo._types import VersionInfo
from zoo.layout import InvalidFilePath, validate_file_path

if TYPE_CHECKING:
    from zoo._client import ZooClient
    from zoo._http import Http

__all__ = ["LocalFile", "publish_folder", "scan_folder", "short_name"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file of the folder to publish."""

    path: str
    local: Path
    size: int
    sha256: str


def short_name(stub: stubs.Stub) -> str:
    """The hub's model name for a path stub: ARCH[-SUB]-DATASET[-SCHEME]-TAG, no '-none'
    (SparseZoo v2's short stub; the hub derives the same)."""
    tag = (stub.sparse_tag or "").removesuffix("-none")
    parts = [stub.architecture, stub.sub_architecture, stub.dataset, stub.training_scheme, tag]
    return "-".join(p for p in parts if p)


def scan_folder(folder: Path) -> list[LocalFile]:
    """Every regular file under ``folder`` (hidden ones skipped), hashed, paths validated."""
    if not folder.is_dir():
        raise LocalModelError(f"{folder} is not a folder; give the model folder to publish")
    found: list[LocalFile] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            local = Path(dirpath) / filename
            rel = local.relative_to(folder).as_posix()
            try:
                validate_file_path(rel)
            except InvalidFilePath as e:
                raise LocalModelError(f"{e}; rename it or move it out of {folder}") from e
            digest, size = hash_file(local)
            found.append(LocalFile(rel, local, size, digest))
    if not found:
        raise LocalModelError(f"{folder} holds no files to publish")
    return found


def _model_target(stub: stubs.Stub, namespace: str | None) -> tuple[dict[str, Any], str, str]:
    """The create-model body, and the namespace and name the model will have."""
    if stub.version is not None or stub.recipe is not None:
        raise LocalModelError(f"publish to a model stub, without @version or ?recipe: {stub}")
    if stub.form == "namespaced":
        assert stub.namespace is not None and stub.repo_name is not None
        if namespace and namespace != stub.namespace:
            raise LocalModelError(
                f"--namespace {namespace} contradicts the stub's {stub.namespace}"
            )
        ns, name = stub.namespace, stub.repo_name
        return {"namespace": ns, "name": name}, ns, name
    if not namespace:
        raise LocalModelError(f"{stub} has no namespace: pass --namespace NS (namespace=...)")
    if stub.form == "path":
        return {"namespace": namespace, "stub": str(stub)}, namespace, short_name(stub)
    assert stub.repo_name is not None
    return {"namespace": namespace, "name": stub.repo_name}, namespace, stub.repo_name


def publish_folder(
    client: ZooClient,
    folder: Path,
    stub: stubs.Stub,
    *,
    namespace: str | None,
    message: str = "",
    display_name: str = "",
    progress: Callable[[int], None] | None = None,
    model_fields: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> VersionInfo:
    """Create the model if needed, upload the folder's new blobs, commit; the new version."""
    http = client.http
    body, ns, name = _model_target(stub, namespace)
    files = scan_folder(folder)
    body.update(model_fields or {})
    if display_name:
        body["display_name"] = display_name
    try:
        created = http.request("POST", "models", json=body, retry=False).json()
        ns, name = created["namespace"], created["name"]
    except ModelExistsError:
        pass  # publishing a new version of an existing model
    manifest = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
    body = {"files": manifest, "message": message, "meta": dict(meta or {})}
    upload = http.request("POST", f"models/{ns}/{name}/versions", json=body).json()
    upload_id = upload["upload_id"]
    committing = False
    by_sha = {f.sha256: f.local for f in files}
    report = progress or (lambda n: None)
    try:
        # Progress counts the folder's bytes: a blob the hub has, or one shared by several
        # paths, counts once per path (so the bar ends at the folder's size).
        todo = [b for b in upload["blobs"] if b["status"] == "upload"]
        for b in upload["blobs"]:
            copies = len(b["paths"]) if b["status"] == "stored" else len(b["paths"]) - 1
            report(int(b["size"]) * copies)
        workers = max(1, min(client.config.workers, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-upload") as pool:
            results = list(
                pool.map(lambda b: _send_blob(client, b, by_sha[b["sha256"]], report), todo)
            )
        multipart = [r for r in results if r is not None]
        committing = True
        committed = http.request(
            "POST", f"uploads/{upload_id}/commit", json={"multipart": multipart}, retry=False
        ).json()
    except BaseException as e:
        lost_answer = committing and isinstance(e, NetworkError)
        found = _abort(http, upload_id, ns, name, manifest, lost_answer)
        if found is None:
            raise
        return found
    return VersionInfo.from_json(committed)


def _abort(
    http: Http,
    upload_id: str,
    ns: str,
    name: str,
    manifest: list[dict[str, Any]],
    lost_answer: bool,
) -> VersionInfo | None:
    """Abort the upload after a failure; the version it made if the commit did go through."""
    try:
        http.request("DELETE", f"uploads/{upload_id}")
    except ConflictError:
        # The upload is no longer pending: the commit reached the hub and only its answer was
        # lost (a dropped connection). Report the version it made, rather than a failure that
        # would make the caller publish the same folder twice.
        return _committed_version(http, ns, name, manifest) if lost_answer else None
    except ZooError:
        pass  # the original error matters more (the hub expires stale uploads)
    return None


def _committed_version(
    http: Http, ns: str, name: str, manifest: list[dict[str, Any]]
) -> VersionInfo | None:
    """The model's latest version if it holds exactly ``manifest``'s files, else None."""
    try:
        body = http.request("GET", f"models/{ns}/{name}/versions/latest").json()
    except ZooError:
        return None
    version = VersionInfo.from_json(body)
    theirs = sorted((f.path, f.size, f.sha256) for f in version.files)
    ours = sorted((f["path"], f["size"], f["sha256"]) for f in manifest)
    return version if theirs == ours else None


def _send_blob(
    client: ZooClient, blob: dict[str, Any], local: Path, report: Callable[[int], None]
) -> dict[str, Any] | None:
    """PUT one blob (or each of its parts); returns the commit entry of a multipart blob."""
    headers = dict(blob.get("headers") or {})
    auth = bool(blob.get("authenticated"))
    size = int(blob["size"])
    if not blob.get("parts"):
        _put(client, blob["url"], local, 0, size, headers, auth, report)
        return None
    part_size = int(blob["part_size"])
    parts = []
    for part in blob["parts"]:
        offset = (int(part["part_number"]) - 1) * part_size
        length = min(part_size, size - offset)
        r = _put(client, part["url"], local, offset, length, headers, auth, report)
        etag = r.headers.get("etag")
        if not etag:
            raise ZooError(f"the store sent no ETag for part {part['part_number']} of {local}")
        parts.append({"part_number": int(part["part_number"]), "etag": etag})
    return {"sha256": blob["sha256"], "parts": parts}


def _put(
    client: ZooClient,
    url: str,
    local: Path,
    offset: int,
    length: int,
    headers: dict[str, str],
    authenticated: bool,
    report: Callable[[int], None],
) -> Any:
    http = client.http
    sent = [0]

    def body() -> Iterator[bytes]:
        # A fresh generator per attempt (a retry re-reads from the file, not from memory).
        report(-sent[0])
        sent[0] = 0
        with open(local, "rb") as f:
            f.seek(offset)
            left = length
            while left:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    raise LocalModelError(f"{local} shrank while it was being published")
                left -= len(chunk)
                sent[0] += len(chunk)
                report(len(chunk))
                yield chunk

    put_headers = {**headers, "Content-Length": str(length)}
    # authenticated=True: the hub's own upload URL, sent with the token; False: a presigned
    # URL, sent by the tokenless client (it is its own credential).
    return http.request(
        "PUT", url, headers=put_headers, content_factory=body, authenticated=authenticated
    )
