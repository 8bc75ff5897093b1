"""File downloads over HTTP on both configurations: headers, Range on the filesystem backend,
presigned redirects on S3, the download counter and private files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import httpx
import pytest
from api_helpers import error

from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model

WEIGHTS = bytes(range(256)) * 40  # 10240 bytes: every offset has a known byte


@dataclass(frozen=True)
class Published:
    ns: str
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def published(hub: Hub) -> Published:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    files = {
        "model.onnx": linear_model(0.5),
        "model.md": f"# {ns}\n".encode(),
        "training/weights.bin": WEIGHTS,
    }
    create_model(http, ns, name="m")
    publish(http, ns, "m", files)
    create_model(http, ns, name="secret", visibility="private")
    publish(http, ns, "secret", files)
    return Published(ns, files)


def url(ns: str, path: str, ref: str = "1", name: str = "m") -> str:
    return f"/models/{ns}/{name}/versions/{ref}/files/{path}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_s3(hub: Hub) -> bool:
    return hub.settings.storage == "s3"


# --- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["model.onnx", "model.md", "training/weights.bin"])
def test_head_headers(hub: Hub, anon: httpx.Client, published: Published, path: str) -> None:
    r = anon.head(url(published.ns, path))
    assert r.status_code == 200
    data = published.files[path]
    assert r.headers["etag"] == f'"{sha(data)}"'
    assert r.headers["x-zoo-version"] == "1"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.content == b""


def test_get_headers_and_bytes(
    hub: Hub, anon: httpx.Client, plain: httpx.Client, published: Published
) -> None:
    r = anon.get(url(published.ns, "training/weights.bin"))
    assert r.headers["etag"] == f'"{sha(WEIGHTS)}"'
    assert r.headers["x-zoo-version"] == "1"
    if is_s3(hub):
        assert r.status_code == 302
        r = plain.get(r.headers["location"])  # no Authorization: the URL itself is the grant
    assert r.status_code == 200
    assert r.content == WEIGHTS
    assert r.headers["content-length"] == str(len(WEIGHTS))


def test_alias_ref_names_the_resolved_version(
    hub: Hub, anon: httpx.Client, published: Published
) -> None:
    latest = anon.head(url(published.ns, "model.md", ref="latest"))
    assert latest.status_code == 200 and latest.headers["x-zoo-version"] == "1"
    assert latest.headers["cache-control"] == "no-cache"  # an alias moves
    pinned = anon.head(url(published.ns, "model.md"))
    assert "immutable" in pinned.headers["cache-control"]


# --- Range (filesystem backend) -----------------------------------------------------------

N = len(WEIGHTS)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        (f"bytes={N - 1}-{N - 1}", N - 1, N - 1),
        ("bytes=100-299", 100, 299),
        ("bytes=-10", N - 10, N - 1),
        ("bytes=5000-", 5000, N - 1),
        (f"bytes=10-{N + 500}", 10, N - 1),
    ],
)
def test_range(
    hub: Hub, anon: httpx.Client, published: Published, header: str, start: int, end: int
) -> None:
    r = anon.get(
        url(published.ns, "training/weights.bin"), headers={"Range": header}, follow_redirects=True
    )
    assert r.status_code == 206, r.text
    assert r.content == WEIGHTS[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{N}"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", [f"bytes={N}-", f"bytes={N + 10}-{N + 20}"])
def test_range_not_satisfiable(
    hub: Hub, anon: httpx.Client, published: Published, header: str
) -> None:
    if is_s3(hub):
        pytest.skip("on S3 the store answers ranges behind the redirect")
    r = anon.get(url(published.ns, "training/weights.bin"), headers={"Range": header})
    err = error(r, 416, "RANGE_NOT_SATISFIABLE")
    assert r.headers["content-range"] == f"bytes */{N}"
    assert header.removeprefix("bytes=") in err["message"] and str(N) in err["message"]


def test_filesystem_streams_without_redirect(
    hub: Hub, anon: httpx.Client, published: Published
) -> None:
    if is_s3(hub):
        pytest.skip("filesystem backend only")
    r = anon.get(url(published.ns, "model.onnx"))
    assert r.status_code == 200 and r.content == published.files["model.onnx"]
    assert r.headers["content-type"] == "application/octet-stream"


# --- S3: presigned redirects --------------------------------------------------------------


def test_s3_get_redirects_to_a_presigned_url(
    hub: Hub, admin: httpx.Client, anon: httpx.Client, published: Published
) -> None:
    if not is_s3(hub):
        pytest.skip("S3 backend only")
    r = anon.get(url(published.ns, "model.onnx"))
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(hub.settings.s3_endpoint_url or "")
    assert "Signature" in location or "X-Amz-Signature" in location
    # The API never carries the bytes: the store serves them to a client without the hub's token.
    with httpx.Client() as plain:
        got = plain.get(location)
        assert got.status_code == 200 and got.content == published.files["model.onnx"]
        part = plain.get(location, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == published.files["model.onnx"][:10]
    # httpx following the redirect from the hub drops the hub's Authorization (other origin).
    followed = admin.get(url(published.ns, "model.md"), follow_redirects=True)
    assert followed.status_code == 200 and followed.content == published.files["model.md"]
    assert "authorization" not in followed.request.headers


def test_s3_head_answers_without_redirect(
    hub: Hub, anon: httpx.Client, published: Published
) -> None:
    if not is_s3(hub):
        pytest.skip("S3 backend only")
    r = anon.head(url(published.ns, "training/weights.bin"))
    assert r.status_code == 200 and "location" not in r.headers
    assert r.headers["content-length"] == str(N)


# --- errors and privacy -------------------------------------------------------------------


def test_missing_file_version_and_model(hub: Hub, anon: httpx.Client, published: Published) -> None:
    err = error(anon.get(url(published.ns, "nope/missing.bin")), 404, "FILE_NOT_FOUND")
    assert "'nope/missing.bin'" in err["message"]
    err = error(anon.get(url(published.ns, "model.onnx", ref="9")), 404, "VERSION_NOT_FOUND")
    assert "'9'" in err["message"] and err["details"]["available"] == [1]
    err = error(anon.get(url(published.ns, "model.onnx", name="nope")), 404, "MODEL_NOT_FOUND")
    assert f"'{published.ns}/nope'" in err["message"]
    assert anon.head(url(published.ns, "nope.bin")).status_code == 404


def test_private_files_are_hidden(hub: Hub, anon: httpx.Client, published: Published) -> None:
    path = url(published.ns, "model.onnx", name="secret")
    err = error(anon.get(path), 404, "MODEL_NOT_FOUND")
    assert f"{published.ns}/secret" in err["message"]
    assert anon.head(path).status_code == 404
    reader = hub.client(hub.token(["read"], [published.ns]))
    r = reader.get(path, follow_redirects=True)
    assert r.status_code == 200 and r.content == published.files["model.onnx"]
    other = hub.client(hub.token(["read"], [unique_namespace()]))
    error(other.get(path), 404, "MODEL_NOT_FOUND")


# --- the download counter -----------------------------------------------------------------


def test_download_counter(hub: Hub, admin: httpx.Client, anon: httpx.Client) -> None:
    ns = unique_namespace()
    create_model(admin, ns, name="m")
    files = {"model.onnx": linear_model(0.5), "model.md": f"# {ns}\n".encode()}
    publish(admin, ns, "m", files)
    publish(admin, ns, "m", {**files, "model.md": f"# {ns} v2\n".encode()})

    def counts() -> tuple[int, int, int]:
        model = anon.get(f"/models/{ns}/m").json()["downloads"]
        v1 = anon.get(f"/models/{ns}/m/versions/1").json()["downloads"]
        v2 = anon.get(f"/models/{ns}/m/versions/2").json()["downloads"]
        return model, v1, v2

    assert counts() == (0, 0, 0)
    anon.get(url(ns, "model.onnx"))  # a version fetch (302 on S3 counts: the hub granted it)
    assert counts() == (1, 1, 0)
    anon.head(url(ns, "model.onnx"))  # HEAD: no
    anon.get(url(ns, "model.md"))  # another file: no
    anon.get(url(ns, "model.onnx"), headers={"Range": "bytes=100-"})  # a resume: no
    anon.get(url(ns, "model.onnx"), headers={"Range": "bytes=-10"})  # a suffix: no
    assert counts() == (1, 1, 0)
    anon.get(url(ns, "model.onnx"), headers={"Range": "bytes=0-99"})  # starts at 0: yes
    anon.get(url(ns, "model.onnx", ref="latest"))  # v2 through its alias
    anon.get(url(ns, "model.onnx", ref="2"))
    assert counts() == (4, 2, 2)
    listed = anon.get(f"/models/{ns}/m/versions").json()
    assert [(v["number"], v["downloads"]) for v in listed] == [(2, 2), (1, 2)]
    # Failed requests count nothing.
    anon.get(url(ns, "missing.onnx"))
    anon.get(url(ns, "model.onnx", ref="3"))
    assert counts() == (4, 2, 2)
