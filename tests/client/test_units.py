"""Client pieces without a hub: settings, error mapping, retries, the lock, the cache layout."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

import zoo
from zoo._cache import Cache
from zoo._config import ZooConfig, write_token_file
from zoo._errors import error_from_response
from zoo._http import Http, retry_after
from zoo._lock import file_lock


def test_config_reads_the_environment_once(tmp_path: Path) -> None:
    token_file = write_token_file(tmp_path / "cfg" / "token", "from-file")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    env = {"ZOO_TOKEN_PATH": str(token_file), "ZOO_CACHE": str(tmp_path / "c")}
    cfg = ZooConfig.from_env(env)
    assert (cfg.endpoint, cfg.token, cfg.cache_dir, cfg.offline) == (
        "http://127.0.0.1:8000",
        "from-file",
        tmp_path / "c",
        False,
    )
    cfg = ZooConfig.from_env({**env, "ZOO_TOKEN": "from-env", "ZOO_OFFLINE": "1"})
    assert (cfg.token, cfg.offline) == ("from-env", True)
    assert ZooConfig.from_env(env, token="explicit", endpoint="http://h/").endpoint == "http://h"
    assert ZooConfig.from_env(env, token="explicit").token == "explicit"


def _response(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", "http://hub.test/api/v1/resolve")
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "MODEL_NOT_FOUND", zoo.ModelNotFoundError),
        (404, "VERSION_NOT_FOUND", zoo.VersionNotFoundError),
        (404, "FILE_NOT_FOUND", zoo.RemoteFileNotFoundError),
        (404, "SOMETHING_NEW", zoo.NotFoundError),
        (409, "MODEL_EXISTS", zoo.ModelExistsError),
        (400, "DIGEST_MISMATCH", zoo.DigestMismatchError),
        (400, "INVALID_STUB", zoo.BadRequestError),
        (401, "UNAUTHORIZED", zoo.AuthenticationError),
        (403, "FORBIDDEN", zoo.PermissionDeniedError),
        (429, "", zoo.RateLimitedError),
        (503, "SERVICE_UNAVAILABLE", zoo.ServerError),
    ],
)
def test_error_codes_map_to_one_tree(status: int, code: str, cls: type[zoo.APIError]) -> None:
    body = {"error": {"code": code, "message": "m", "details": {"suggestions": ["zoo:a/b"]}}}
    err = error_from_response(_response(status, body))
    assert type(err) is cls and isinstance(err, zoo.ZooError)
    assert (err.status, err.code) == (status, code)


def test_non_json_errors_keep_the_status() -> None:
    request = httpx.Request("GET", "http://store.test/x")
    err = error_from_response(httpx.Response(502, text="<html>bad gateway</html>", request=request))
    assert isinstance(err, zoo.ServerError) and "502" in str(err) and "bad gateway" in str(err)


def test_retry_after_forms() -> None:
    assert retry_after(_response(429, headers={"Retry-After": "7"})) == 7
    assert retry_after(_response(429)) is None
    when = retry_after(_response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert when == 0.0  # a date in the past: retry now


def test_retries_connection_errors_then_gives_up(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    cfg = ZooConfig(endpoint="http://hub.test", cache_dir=tmp_path, backoff_base=0.001)
    http = Http(cfg, httpx.MockTransport(handler))
    assert http.request("GET", "models").json() == {"ok": True}
    assert len(calls) == 3

    dead = Http(
        cfg.replace(max_retries=1),
        httpx.MockTransport(
            lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r))
        ),
    )
    with pytest.raises(zoo.NetworkError, match=r"cannot reach hub\.test"):
        dead.request("GET", "models")


def test_posts_are_not_retried_on_5xx(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": {"code": "X", "message": "down"}})

    cfg = ZooConfig(endpoint="http://hub.test", cache_dir=tmp_path, backoff_base=0.001)
    with pytest.raises(zoo.ServerError):
        Http(cfg, httpx.MockTransport(handler)).request("POST", "models", json={})
    assert len(calls) == 1


def test_the_token_goes_to_the_hub_origin_only(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.port is None:
            return httpx.Response(302, headers={"Location": "http://hub.test:9000/bucket/x?sig=1"})
        return httpx.Response(200, content=b"bytes")

    cfg = ZooConfig(endpoint="http://hub.test", token="secret", cache_dir=tmp_path)
    http = Http(cfg, httpx.MockTransport(handler))
    with http.stream_get("http://hub.test/api/v1/models/a/b/versions/1/files/f", {}) as r:
        assert r.read() == b"bytes"
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert "authorization" not in seen[1].headers  # same host, other port: another origin


def test_a_store_on_the_hubs_own_host_gets_no_token(tmp_path: Path) -> None:
    # One reverse proxy for the API and the store: the presigned URL is same-origin.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/api/"):
            return httpx.Response(302, headers={"Location": "/store/bucket/x?X-Amz-Signature=s"})
        return httpx.Response(200, content=b"bytes")

    cfg = ZooConfig(endpoint="http://hub.test", token="secret", cache_dir=tmp_path)
    http = Http(cfg, httpx.MockTransport(handler))
    with http.stream_get("http://hub.test/api/v1/models/a/b/versions/1/files/f", {}) as r:
        assert r.read() == b"bytes"
    assert [("authorization" in r.headers) for r in seen] == [True, False]


def test_offline_refuses_before_any_socket(tmp_path: Path) -> None:
    cfg = ZooConfig(endpoint="http://hub.test", cache_dir=tmp_path, offline=True)
    http = Http(cfg, httpx.MockTransport(lambda r: pytest.fail("no request expected")))
    with pytest.raises(zoo.OfflineError):
        http.request("GET", "models")


def test_the_lock_times_out_and_frees_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with file_lock(path, 5):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    start = time.monotonic()
    with pytest.raises(zoo.CacheLockTimeout, match="held the cache lock"), file_lock(path, 0.2):
        pass
    assert time.monotonic() - start < 2
    release.set()
    t.join()
    with file_lock(path, 0.2):  # the holder is gone: the lock is free, the file stays
        pass


def test_a_crashed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "y.lock"
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies holding it
        with file_lock(path, 1):
            os._exit(0)
    os.waitpid(pid, 0)
    with file_lock(path, 0.5):
        pass


def test_cache_refuses_hostile_names(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(ValueError, match="unsafe"):
        cache.snapshot_dir("..", "x", 1)
    with pytest.raises(ValueError, match="sha256"):
        cache.blob_path("../../etc/passwd")


def test_refs_are_written_atomically(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.write_ref("ns", "m", "latest", 3)
    assert cache.read_ref("ns", "m", "latest") == 3
    assert [p.name for p in (tmp_path / "refs/ns/m").iterdir()] == ["latest"]


def test_multipart_publish_sends_parts_without_the_token(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    data = os.urandom(2500)
    (folder / "model.onnx").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    seen: list[httpx.Request] = []
    commit: dict[str, object] = {}

    def hub(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if request.url.host == "store.test":
            return httpx.Response(200, headers={"ETag": f'"etag-{request.url.params["part"]}"'})
        if path == "/api/v1/models":
            return httpx.Response(201, json={"namespace": "ns", "name": "m"})
        if path == "/api/v1/models/ns/m/versions":
            parts = [{"part_number": n, "url": f"http://store.test/b?part={n}"} for n in (1, 2, 3)]
            blob = {
                "sha256": sha,
                "size": 2500,
                "paths": ["model.onnx"],
                "status": "upload",
                "method": "PUT",
                "url": None,
                "headers": {},
                "part_size": 1000,
                "parts": parts,
                "authenticated": False,
            }
            return httpx.Response(201, json={"upload_id": "u1", "blobs": [blob]})
        if path == "/api/v1/uploads/u1/commit":
            commit.update(json.loads(request.content))
            files = [{"path": "model.onnx", "size": 2500, "sha256": sha}]
            return httpx.Response(
                200, json={"number": 1, "files": files, "model": {"namespace": "ns", "name": "m"}}
            )
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": path}})

    cfg = ZooConfig(endpoint="http://hub.test", token="secret", cache_dir=tmp_path / "c")
    client = zoo.ZooClient(config=cfg, transport=httpx.MockTransport(hub))
    version = client.publish(folder, "zoo:ns/m")
    assert version.stub == "zoo:ns/m@1"
    puts = sorted((r for r in seen if r.url.host == "store.test"), key=lambda r: str(r.url))
    assert b"".join(r.content for r in puts) == data
    assert [len(r.content) for r in puts] == [1000, 1000, 500]
    assert all("authorization" not in r.headers for r in puts)
    assert commit == {
        "multipart": [
            {"sha256": sha, "parts": [{"part_number": n, "etag": f'"etag-{n}"'} for n in (1, 2, 3)]}
        ]
    }


def test_garbage_collection_removes_abandoned_downloads_only(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    mine = cache.temp_path("a" * 64)
    mine.write_bytes(b"in flight")
    dead = mine.with_name(f"{'a' * 64}.999999999.abc")  # no such pid
    dead.write_bytes(b"abandoned")
    assert cache.collect_garbage() == len(b"abandoned")
    assert mine.exists() and not dead.exists()
