"""Slow uploads, commits and archive builds hold no database connection while bytes move.

A hub with a one-connection pool: while one request streams a blob, verifies one or builds a
sample archive (seconds to minutes for a large model), every other request must be served.
Before, each held its session's connection to the end, so a handful of large uploads at once
took every connection and the whole hub (browsing included) stalled for the pool timeout,
then failed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from support.fixtures import CONFIGURATIONS
from support.hub import create_model, manifest, publish, unique_namespace, upload_blobs
from support.onnx_models import linear_model
from support.paused import OwnHub, in_thread, own_hub

POOL_TIMEOUT = 3.0


@pytest.fixture(scope="module", params=CONFIGURATIONS)
def small_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnHub]:
    """A hub with one database connection and no overflow."""
    yield from own_hub(
        request,
        tmp_path_factory.mktemp(str(request.param)),
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=POOL_TIMEOUT,
    )


def _browse_while(hub: OwnHub) -> httpx.Response:
    """A catalog request, timed: it must not wait for the pool."""
    start = time.monotonic()
    r = httpx.get(f"{hub.url}/api/v1/models", timeout=30)
    assert time.monotonic() - start < POOL_TIMEOUT, "the request waited for a connection"
    return r


def _browse_during(hub: OwnHub, request: Callable[[], httpx.Response]) -> httpx.Response:
    """Send ``request``, which the store holds (``hub.storage.pause``); browse while it is
    held, then let it go and return its answer."""
    worker, out = in_thread(request)
    try:
        assert hub.storage.entered.wait(10), "the request never reached the paused call"
        r = _browse_while(hub)
        assert r.status_code == 200, r.text
    finally:
        hub.storage.resume()
        worker.join(60)
    answer: httpx.Response = out["value"]
    return answer


def test_a_slow_blob_upload_leaves_the_connection_free(small_hub: OwnHub) -> None:
    if small_hub.config != "sqlite-fs":
        pytest.skip("on S3 the client uploads to a presigned URL: the hub never streams it")
    ns = unique_namespace()
    name = create_model(small_hub.api, ns, name="slow")["name"]
    data = b"x" * (1 << 20)
    r = small_hub.api.post(
        f"/models/{ns}/{name}/versions", json={"files": manifest({"recipe.yaml": data})}
    )
    assert r.status_code == 201, r.text
    upload = r.json()
    (blob,) = upload["blobs"]
    sent_half, finish = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        yield data[: len(data) // 2]
        sent_half.set()
        finish.wait(30)
        yield data[len(data) // 2 :]

    result: dict[str, httpx.Response] = {}

    def put() -> None:
        headers = {**blob["headers"], "Authorization": small_hub.api.headers["Authorization"]}
        result["put"] = httpx.put(blob["url"], content=body(), headers=headers, timeout=60)

    uploader = threading.Thread(target=put)
    uploader.start()
    try:
        assert sent_half.wait(10)
        time.sleep(0.3)  # the hub is now inside the upload, reading the body
        r = _browse_while(small_hub)
        assert r.status_code == 200, r.text
    finally:
        finish.set()
        uploader.join(60)
    assert result["put"].status_code == 201, result["put"].text
    r = small_hub.api.post(f"/uploads/{upload['upload_id']}/commit")
    assert r.status_code == 200, r.text
    assert r.json()["number"] == 1


def test_a_commit_verifying_its_blobs_leaves_the_connection_free(small_hub: OwnHub) -> None:
    ns = unique_namespace()
    name = create_model(small_hub.api, ns, name="verify")["name"]
    files = {"recipe.yaml": b"modifiers: []\n" + ns.encode()}
    r = small_hub.api.post(f"/models/{ns}/{name}/versions", json={"files": manifest(files)})
    assert r.status_code == 201, r.text
    upload = r.json()
    upload_blobs(small_hub.api, upload, files)
    small_hub.storage.pause("hash_object")
    commit = _browse_during(
        small_hub, lambda: small_hub.api.post(f"/uploads/{upload['upload_id']}/commit")
    )
    assert commit.status_code == 200, commit.text
    version = commit.json()
    assert version["number"] == 1, version
    sha = hashlib.sha256(files["recipe.yaml"]).hexdigest()
    assert [f["sha256"] for f in version["files"]] == [sha]


def test_an_exhausted_pool_is_a_503_that_says_so(small_hub: OwnHub) -> None:
    # The one connection held by hand: a request waits the pool timeout, then is told why.
    with small_hub.app.state.engine.connect():
        start = time.monotonic()
        r = httpx.get(f"{small_hub.url}/api/v1/models", timeout=30)
        waited = time.monotonic() - start
    assert r.status_code == 503, r.text
    message = r.json()["error"]["message"]
    assert "1 database connection" in message and "ZOO_DB_POOL_SIZE" in message, message
    assert POOL_TIMEOUT <= waited < POOL_TIMEOUT + 5
    assert _browse_while(small_hub).status_code == 200  # and the hub serves again


def test_an_archive_build_leaves_the_connection_free(small_hub: OwnHub) -> None:
    # A SparseZoo client's first download of a sample folder builds its archive: members read
    # from the store, the archive written back, seconds for a large model.
    ns = unique_namespace()
    name = create_model(small_hub.api, ns, name="archived")["name"]
    publish(small_hub.api, ns, name, {"model.onnx": linear_model(0.5)})
    small_hub.storage.pause("write_stream", "blobs/")
    url = f"{small_hub.url}/v2/models/{ns}/{name}/versions/1/archives/deployment.tar.gz"
    headers = {"Authorization": small_hub.api.headers["Authorization"]}
    built = _browse_during(small_hub, lambda: httpx.get(url, headers=headers, timeout=60))
    assert built.status_code in (200, 302), built.text
