"""Hostile artifacts on both configurations: each is refused with a 4xx whose code and message
name the problem, and leaves nothing behind (no visible version, no stored blob, no staged or
half-verified object, no row a reader can reach).

- file paths that escape, are absolute, use backslashes, hold NUL or are too long;
- tar archives (which SparseZoo clients extract) with members that escape (zip-slip), are
  absolute, links, devices or FIFOs, and archives that do not read;
- ONNX files whose external data points outside their folder (CVE-2024-27318/27319), from an
  initializer, a Constant node or a subgraph; truncated and random-byte ONNX files;
- manifests whose sizes or digests lie;
- bodies over the configured limits (JSON routes, with and without Content-Length), bodies that
  are not UTF-8 or nest too deeply, and NUL characters anywhere in the input.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import tarfile
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import numpy as np
import pytest
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from app.versions.schemas import SHA256_PATTERN
from support.hub import Hub, create_model, manifest, unique_namespace, upload_blobs
from support.leftovers import assert_nothing_left, verifying_keys
from support.onnx_models import linear_model


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_of(r: httpx.Response, status: int, code: str) -> str:
    """Assert the one error shape with this status and code; return its message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return str(message)


@pytest.fixture(scope="module")
def http(hub: Hub) -> httpx.Client:
    return hub.client(hub.admin_token)


# The archive and ONNX rules are the same code on both configurations; what postgres-s3 adds is
# S3's read path (a temporary copy) and its leftovers (presigned uploads, verifying/ keys). A
# sample of each group runs there, to keep the suite's time in bounds.
S3_SAMPLE = {"../evil.sh", "sample-inputs/link", "random bytes", "../secret.bin", "truncated"}


def sample_on_s3(hub: Hub, key: str) -> None:
    if hub.name != "sqlite-fs" and key not in S3_SAMPLE:
        pytest.skip("same check as on sqlite-fs; postgres-s3 runs a sample of this group")


def commit_refused(
    hub: Hub, http: httpx.Client, files: Mapping[str, bytes], code: str, *, status: int = 400
) -> str:
    """Open, upload and commit ``files`` in a new model; assert the commit is refused with
    ``code`` and that nothing is left; return the error message."""
    ns = unique_namespace()
    create_model(http, ns, name="m")
    before = verifying_keys(hub)
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    assert r.status_code == 201, r.text
    upload = r.json()
    upload_blobs(http, upload, files)
    message = error_of(http.post(f"/uploads/{upload['upload_id']}/commit"), status, code)
    assert_nothing_left(
        hub,
        http,
        ns,
        "m",
        {sha(b) for b in files.values()},
        upload_id=upload["upload_id"],
        verifying_before=before,
    )
    # The refused upload is over: committing it again cannot publish it.
    again = http.post(f"/uploads/{upload['upload_id']}/commit")
    assert again.status_code == 409, again.text
    return message


def commit_accepted(http: httpx.Client, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The positive control: the same kind of artifact, made safe, publishes."""
    ns = unique_namespace()
    create_model(http, ns, name="m")
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    assert r.status_code == 201, r.text
    upload_blobs(http, r.json(), files)
    commit = http.post(f"/uploads/{r.json()['upload_id']}/commit")
    assert commit.status_code == 200, commit.text
    return dict(commit.json())


# --- file paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("..", "'..'"),
        ("../escape.onnx", "'..'"),
        ("deployment/../../escape.onnx", "'..'"),
        ("/etc/passwd", "absolute"),
        ("..\\escape.onnx", "backslash"),
        ("deployment\\model.onnx", "backslash"),
        ("a/\x00b.onnx", "NUL"),
        ("model.onnx\x00.txt", "NUL"),
        ("x" * 256, "longer than 255"),
        ("a/" * 600 + "b", "at most 1024 characters"),
        ("C:/windows/model.onnx", "'C:'"),
        ("", "at least 1 character"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_hostile_paths_are_refused_at_open(
    hub: Hub, http: httpx.Client, path: str, reason: str
) -> None:
    ns = unique_namespace()
    create_model(http, ns, name="m")
    data = b"payload " + ns.encode()
    files = [{"path": path, "size": len(data), "sha256": sha(data)}]
    r = http.post(f"/models/{ns}/m/versions", json={"files": files})
    # The schema's length limits answer 422 first; the path rules answer INVALID_PATH.
    schema_limit = path == "" or len(path) > 1024
    message = error_of(
        r, 422 if schema_limit else 400, "VALIDATION_FAILED" if schema_limit else "INVALID_PATH"
    )
    assert reason in message
    assert_nothing_left(hub, http, ns, "m", {sha(data)})


# --- tar archives ---------------------------------------------------------------------------


def tar_bytes(members: list[tarfile.TarInfo], *, gz: bool) -> bytes:
    """An archive: a harmless file first (so the error must name the bad member), then these."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as tar:
        ok = tarfile.TarInfo("sample-inputs/inp-0000.npz")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"abc"))
        for m in members:
            tar.addfile(m, io.BytesIO(b"evil") if m.isreg() else None)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info


TAR_NAMES = ["sample-inputs.tar.gz", "deployment.tgz", "extra/data.tar"]

BAD_MEMBERS = [
    (member("../evil.sh"), "'..'"),
    (member("sample-inputs/../../../home/user/.bashrc"), "'..'"),
    (member("..\\..\\evil.bat"), "'..'"),
    (member("/etc/cron.d/evil"), "absolute"),
    (member("C:\\Windows\\evil.dll"), "absolute"),
    (member("sample-inputs/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (member("sample-inputs/rel-link", tarfile.SYMTYPE, "../../x"), "symbolic link"),
    (member("sample-inputs/hard", tarfile.LNKTYPE, "/etc/shadow"), "hard link"),
    (member("sample-inputs/null", tarfile.CHRTYPE), "device"),
    (member("sample-inputs/disk", tarfile.BLKTYPE), "device"),
    (member("sample-inputs/pipe", tarfile.FIFOTYPE), "FIFO"),
]


@pytest.mark.parametrize(
    ("index", "bad", "reason"),
    [(i, m, r) for i, (m, r) in enumerate(BAD_MEMBERS)],
    ids=[f"{m.name[:30]}-{r}" for m, r in BAD_MEMBERS],
)
def test_tar_with_an_unsafe_member_is_refused(
    hub: Hub, http: httpx.Client, index: int, bad: tarfile.TarInfo, reason: str
) -> None:
    sample_on_s3(hub, bad.name)
    name = TAR_NAMES[index % len(TAR_NAMES)]
    archive = tar_bytes([bad], gz=name.endswith(("gz", "tgz")))
    files = {name: archive, "model.md": f"# tar {index}\n".encode()}
    message = commit_refused(hub, http, files, "INVALID_ARCHIVE")
    assert name in message and repr(bad.name)[:40].strip("'") in message
    assert reason in message


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("random bytes", random.Random(1).randbytes(3000)),
        ("truncated gzip", tar_bytes([], gz=True)[:40]),
        ("gzip of garbage", __import__("gzip").compress(random.Random(2).randbytes(2000), mtime=0)),
    ],
)
def test_unreadable_archive_is_refused(
    hub: Hub, http: httpx.Client, what: str, data: bytes
) -> None:
    sample_on_s3(hub, what)
    message = commit_refused(hub, http, {"sample-inputs.tar.gz": data}, "INVALID_ARCHIVE")
    assert "sample-inputs.tar.gz is not a readable tar archive" in message


def test_safe_archive_is_accepted(http: httpx.Client) -> None:
    folder = member("./sample-inputs", tarfile.DIRTYPE)
    folder.mode = 0o755
    archive = tar_bytes([folder, member("./sample-inputs/inp-0001.npz")], gz=True)
    v = commit_accepted(http, {"sample-inputs.tar.gz": archive, "model.onnx": linear_model(0.5)})
    assert {f["path"] for f in v["files"]} == {"sample-inputs.tar.gz", "model.onnx"}


# --- ONNX files -----------------------------------------------------------------------------


def external_model(location: str, *, holder: str = "initializer") -> tuple[bytes, bytes]:
    """A Gemm whose weight is kept in external data at ``location``; the model and the weight
    bytes. ``holder`` is where the external tensor sits: an initializer, a Constant node's
    ``value`` attribute, or a Constant inside an ``If`` node's branch (a subgraph)."""
    w = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    tensor = numpy_helper.from_array(w, "w")
    external_data_helper.set_external_data(tensor, location, offset=0, length=w.nbytes)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")
    initializers: list[TensorProto] = []
    if holder == "initializer":
        nodes = [gemm]
        initializers = [tensor]
    elif holder == "constant":
        nodes = [helper.make_node("Constant", [], ["w"], value=tensor), gemm]
    else:
        w_out = helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 8])
        branch = helper.make_graph(
            [helper.make_node("Constant", [], ["w"], value=tensor)], "branch", [], [w_out]
        )
        cond = numpy_helper.from_array(np.array(True), "cond")
        nodes = [
            helper.make_node("If", ["cond"], ["w"], then_branch=branch, else_branch=branch),
            gemm,
        ]
        initializers = [cond]
    graph = helper.make_graph(nodes, "external", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(), w.tobytes()


@pytest.mark.parametrize(
    ("location", "holder", "reason"),
    [
        ("../secret.bin", "initializer", "outside the model's folder"),
        ("deployment/../../secret.bin", "initializer", "outside the model's folder"),
        ("/etc/passwd", "initializer", "outside the model's folder"),
        ("..\\secret.bin", "initializer", "outside the model's folder"),
        ("C:/Windows/win.ini", "initializer", "outside the model's folder"),
        ("../secret.bin", "constant", "outside the model's folder"),
        ("/etc/passwd", "subgraph", "outside the model's folder"),
        ("missing.bin", "initializer", "not a file of this version"),
    ],
)
def test_onnx_external_data_outside_the_version_is_refused(
    hub: Hub, http: httpx.Client, location: str, holder: str, reason: str
) -> None:
    sample_on_s3(hub, location)
    model, weights = external_model(location, holder=holder)
    files = {"model.onnx": model, "weights.bin": weights + unique_namespace().encode()}
    message = commit_refused(hub, http, files, "INVALID_ONNX")
    assert "model.onnx" in message and repr(location) in message
    assert reason in message


def test_onnx_external_data_inside_the_version_is_accepted(http: httpx.Client) -> None:
    model, weights = external_model("weights.bin")
    v = commit_accepted(http, {"model.onnx": model, "weights.bin": weights})
    assert v["number"] == 1


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("truncated", linear_model(0.5)[: len(linear_model(0.5)) // 2]),
        ("one byte short", linear_model(0.5)[:-1]),
        ("random bytes", random.Random(3).randbytes(4096)),
        ("empty", b""),
        ("a text file", b"this is not a model\n" * 20),
    ],
)
def test_broken_onnx_is_refused(hub: Hub, http: httpx.Client, what: str, data: bytes) -> None:
    sample_on_s3(hub, what)
    files = {"model.onnx": data, "model.md": f"# {what}\n".encode()}
    message = commit_refused(hub, http, files, "INVALID_ONNX")
    assert message.startswith("model.onnx ")


# --- manifests that lie ---------------------------------------------------------------------


def put_blob(
    http: httpx.Client, blob: dict[str, Any], content: bytes | Iterator[bytes]
) -> httpx.Response:
    headers = {"Authorization": http.headers["Authorization"]} if blob["authenticated"] else {}
    return httpx.put(
        blob["url"], content=content, headers=dict(blob["headers"]) | headers, timeout=60
    )


@pytest.mark.parametrize("lie", ["digest", "size-smaller", "size-larger", "never-sent"])
def test_manifest_that_lies_is_refused_at_commit(hub: Hub, http: httpx.Client, lie: str) -> None:
    ns = unique_namespace()
    create_model(http, ns, name="m")
    real = b"real bytes " + ns.encode()
    declared = {
        "digest": {"size": len(real), "sha256": sha(b"other " + real)},
        "size-smaller": {"size": len(real) - 4, "sha256": sha(real)},
        "size-larger": {"size": len(real) + 4, "sha256": sha(real)},
        "never-sent": {"size": len(real), "sha256": sha(real)},
    }[lie]
    before = verifying_keys(hub)
    r = http.post(f"/models/{ns}/m/versions", json={"files": [{"path": "w.bin", **declared}]})
    assert r.status_code == 201, r.text
    upload = r.json()
    blob = upload["blobs"][0]
    if lie != "never-sent":
        put = put_blob(http, blob, real)
        if blob["authenticated"]:  # the hub checks while it receives; a presigned PUT cannot
            assert error_of(put, 400, "DIGEST_MISMATCH")
    message = error_of(http.post(f"/uploads/{upload['upload_id']}/commit"), 400, "DIGEST_MISMATCH")
    assert "w.bin" in message
    assert_nothing_left(
        hub,
        http,
        ns,
        "m",
        {declared["sha256"], sha(real)},
        upload_id=upload["upload_id"],
        verifying_before=before,
    )


@pytest.mark.parametrize(
    ("files", "status", "code", "words"),
    [
        (
            [
                {"path": "a.bin", "size": 1, "sha256": "a" * 64},
                {"path": "b.bin", "size": 2, "sha256": "a" * 64},
            ],
            400,
            "INVALID_MANIFEST",
            "two different sizes",
        ),
        (
            [
                {"path": "a.bin", "size": 1, "sha256": "a" * 64},
                {"path": "a.bin", "size": 1, "sha256": "b" * 64},
            ],
            400,
            "INVALID_MANIFEST",
            "appears twice",
        ),
        ([{"path": "a.bin", "size": -1, "sha256": "a" * 64}], 422, "VALIDATION_FAILED", "size"),
        ([{"path": "a.bin", "size": 1, "sha256": "A" * 64}], 422, "VALIDATION_FAILED", "sha256"),
        ([{"path": "a.bin", "size": 1, "sha256": "abc"}], 422, "VALIDATION_FAILED", "sha256"),
        (
            [{"path": "a.bin", "size": 16 * 1024**3 + 1, "sha256": "a" * 64}],
            413,
            "PAYLOAD_TOO_LARGE",
            "the limit is 17179869184",
        ),
        (
            [{"path": f"f{i}.bin", "size": 1, "sha256": f"{i:064x}"} for i in range(10_001)],
            413,
            "PAYLOAD_TOO_LARGE",
            "the limit is 10000",
        ),
    ],
    ids=[
        "sha-two-sizes",
        "path-twice",
        "negative-size",
        "uppercase-sha",
        "short-sha",
        "file-over-limit",
        "too-many-files",
    ],
)
def test_inconsistent_manifest_is_refused_at_open(
    hub: Hub, http: httpx.Client, files: list[dict[str, Any]], status: int, code: str, words: str
) -> None:
    ns = unique_namespace()
    create_model(http, ns, name="m")
    message = error_of(http.post(f"/models/{ns}/m/versions", json={"files": files}), status, code)
    assert words in message
    # Malformed digests cannot be blob keys: only well-formed ones are looked up.
    # (The first 20 are enough: the refusal happens before any blob is looked at, and each
    # lookup is a request to the object store.)
    shas = {f["sha256"] for f in files[:20] if re.fullmatch(SHA256_PATTERN[1:-1], f["sha256"])}
    assert_nothing_left(hub, http, ns, "m", shas)


# --- bodies over the limits, and bodies that do not parse -----------------------------------

# Every route that reads a JSON body. GraphQL's body is not in the OpenAPI document (strawberry
# reads it itself), so it is listed by hand.
JSON_ROUTES = [
    ("POST", "/api/v1/models"),
    ("POST", "/api/v1/models/{namespace}/{name}/versions"),
    ("PUT", "/api/v1/models/{namespace}/{name}/aliases/{alias}"),
    ("POST", "/api/v1/models/{namespace}/{name}/versions/{ref}/benchmarks"),
    ("POST", "/api/v1/models/{namespace}/{name}/versions/{ref}/evals"),
    ("POST", "/api/v1/uploads/{upload_id}/commit"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/v2/graphql"),
]


def json_routes(ns: str, upload_id: str) -> list[tuple[str, str]]:
    """JSON_ROUTES filled in for model ``ns/m`` (version 1, alias stable) and an upload."""
    values = {"namespace": ns, "name": "m", "alias": "stable", "ref": "1", "upload_id": upload_id}
    return [(method, template.format(**values)) for method, template in JSON_ROUTES]


@pytest.fixture(scope="module")
def target(http: httpx.Client) -> tuple[str, str]:
    """A model with version 1 and a pending upload: (namespace, upload id)."""
    ns = unique_namespace()
    create_model(http, ns, name="m")
    files = {"model.onnx": linear_model(0.5)}
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    upload_blobs(http, r.json(), files)
    assert http.post(f"/uploads/{r.json()['upload_id']}/commit").status_code == 200
    pending = http.post(f"/models/{ns}/m/versions", json={"files": manifest({"a.md": b"#"})})
    return ns, pending.json()["upload_id"]


def test_every_json_route_is_checked_and_declares_413(hub: Hub) -> None:
    spec = httpx.get(f"{hub.url}/openapi.json").json()
    with_body = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    # A new route that reads a body must join JSON_ROUTES (and so the tests below).
    assert with_body <= set(JSON_ROUTES), with_body - set(JSON_ROUTES)
    for method, path in with_body:
        assert "413" in spec["paths"][path][method.lower()]["responses"], (method, path)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_bodies_over_the_limit_get_413(
    hub: Hub, http: httpx.Client, target: tuple[str, str], chunked: bool
) -> None:
    limit = hub.settings.max_json_body_bytes
    ns = target[0]
    body = b'{"name": "' + ns.encode() + b"x" * limit + b'"}'

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 256 * 1024):
            yield body[i : i + 256 * 1024]

    with httpx.Client(base_url=hub.url, headers=dict(http.headers), timeout=60) as c:
        for method, url in json_routes(*target):
            r = c.request(
                method,
                url,
                content=pieces() if chunked else body,
                headers={"content-type": "application/json"},
            )
            message = error_of(r, 413, "PAYLOAD_TOO_LARGE")
            assert f"{limit}-byte limit" in message, (method, url)
    tokens = http.get("/tokens").json()
    assert not [t for t in tokens if t["name"].startswith(ns)], "a token was created"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"name": "\xff\xfe"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    ],
    ids=["not-utf8", "nested-too-deep"],
)
def test_bodies_that_do_not_parse_get_a_4xx_naming_the_problem(
    hub: Hub, http: httpx.Client, target: tuple[str, str], body: bytes, words: str
) -> None:
    with httpx.Client(base_url=hub.url, headers=dict(http.headers), timeout=60) as c:
        for method, url in json_routes(*target):
            r = c.request(method, url, content=body, headers={"content-type": "application/json"})
            if url == "/v2/graphql":  # strawberry answers in plain text
                assert r.status_code == 400 and words in r.text, (url, r.text)
            else:
                assert words in error_of(r, 422, "VALIDATION_FAILED"), (method, url)


def nul_bodies(ns: str, upload_id: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, URL, a body valid but for one NUL, where the NUL is) per JSON route."""
    api = f"/api/v1/models/{ns}/m"
    one = [{"path": "w.bin", "size": 1, "sha256": "a" * 64}]
    bench = {"engine": "zoo\x00", "hardware": "x86", "cores": 1, "batch_size": 1, "throughput": 1}
    part = {"sha256": "a" * 64, "parts": [{"part_number": 1, "etag": "e\x00"}]}
    return [
        (
            "POST",
            "/api/v1/models",
            {"namespace": ns, "name": "n2", "description": "\x00"},
            "description",
        ),
        ("POST", f"{api}/versions", {"files": one, "message": "first\x00"}, "message"),
        ("POST", f"{api}/versions", {"files": one, "meta": {"k": ["ok", "\x00"]}}, "meta.k.1"),
        ("POST", f"{api}/versions", {"files": one, "meta": {"k\x00": 1}}, "meta.'k\\x00'"),
        ("POST", f"{api}/versions/1/benchmarks", bench, "engine"),
        (
            "POST",
            f"{api}/versions/1/evals",
            {"dataset": "d", "metric": "m\x00", "value": 1},
            "metric",
        ),
        (
            "POST",
            f"/api/v1/uploads/{upload_id}/commit",
            {"multipart": [part]},
            "multipart.0.parts.0.etag",
        ),
        ("POST", "/api/v1/tokens", {"name": "t\x00", "scopes": ["read"]}, "name"),
    ]


def test_nul_in_a_json_body_is_refused_naming_the_field(
    hub: Hub, http: httpx.Client, target: tuple[str, str]
) -> None:
    # PostgreSQL cannot store U+0000 (it answered 500); SQLite can, so the two disagreed.
    with httpx.Client(base_url=hub.url, headers=dict(http.headers), timeout=60) as c:
        for method, url, body, where in nul_bodies(*target):
            message = error_of(c.request(method, url, json=body), 422, "VALIDATION_FAILED")
            assert f"{where} holds a NUL character" in message, (url, message)
    ns = target[0]
    assert http.get(f"/models/{ns}/n2").status_code == 404
    assert [v["number"] for v in http.get(f"/models/{ns}/m/versions").json()] == [1]
    assert http.get(f"/models/{ns}/m/versions/1").json()["benchmarks"] == []


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/models/{ns}/m%00x", 404, "NUL"),
        ("/models/{ns}/m/versions/1/files/model.onnx%00.txt", 404, "NUL"),
        ("/models?q=a%00b", 422, "'q'"),
        ("/resolve?stub=zoo:a%00b", 422, "'stub'"),
        ("/models?cursor=%00", 422, "'cursor'"),
    ],
)
def test_nul_in_the_url_is_refused(
    http: httpx.Client, target: tuple[str, str], url: str, status: int, words: str
) -> None:
    r = http.get(url.format(ns=target[0]))
    message = error_of(r, status, "NOT_FOUND" if status == 404 else "VALIDATION_FAILED")
    assert words in message and "NUL" in message


def test_nul_in_graphql_is_refused(hub: Hub) -> None:
    query = "query($q: String) { models(domain: $q) { modelId } }"
    for body in (
        {"query": query, "variables": {"q": "cv\x00"}},
        {"query": '{ models(domain: "cv\x00") { modelId } }'},
    ):
        r = httpx.post(f"{hub.url}/v2/graphql", json=body, timeout=30)
        assert r.status_code == 400 and "NUL" in r.text, r.text


@pytest.mark.parametrize(
    "ref", ["99999999999", "9" * 5000, "\u00b2", "0", "2147483648"], ids=lambda r: r[:12]
)
def test_version_numbers_out_of_range_are_not_found(
    hub: Hub, target: tuple[str, str], ref: str
) -> None:
    # Version numbers are 32-bit columns: larger ones answered 500 (integer out of range),
    # '\u00b2' (a digit to str.isdigit, not to int) too.
    ns = target[0]
    for url in (
        f"{hub.url}/api/v1/models/{ns}/m/versions/{ref}",
        f"{hub.url}/api/v1/models/{ns}/m/versions/{ref}/files/model.onnx",
    ):
        error_of(httpx.get(url), 404, "VERSION_NOT_FOUND")
    if ref.isascii() and ref.isdigit() and len(ref) < 100:
        archive = f"{hub.url}/v2/models/{ns}/m/versions/{ref}/archives/deployment.tar.gz"
        error_of(httpx.get(archive), 404, "VERSION_NOT_FOUND")


def test_numbers_past_32_bits_in_bodies_and_paths_are_422(
    http: httpx.Client, target: tuple[str, str]
) -> None:
    r = http.put(f"/models/{target[0]}/m/aliases/stable", json={"version": 2**40})
    assert "2147483647" in error_of(r, 422, "VALIDATION_FAILED")
    assert "2147483647" in error_of(http.delete(f"/tokens/{2**40}"), 422, "VALIDATION_FAILED")
    assert http.get(f"/models/{target[0]}/m/aliases").json()[0]["name"] == "latest"
