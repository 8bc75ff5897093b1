"""Downloads against the real hub on both backends: cache layout, resume, corruption, retries,
offline mode, the token never reaching the store, two processes at once."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import zoo
from support.client_helpers import MakeClient, Published, Recorder, publish_model
from support.faults import Fault, fault_proxy
from support.hub import Hub


def blobs_of(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "blobs").iterdir() if p.is_file())


def incomplete(cache: Path) -> list[Path]:
    d = cache / "blobs" / ".incomplete"
    return list(d.iterdir()) if d.exists() else []


def test_download_builds_a_verified_snapshot(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    rec = Recorder()
    client = make_client(hub.url, cache=cache, transport=rec)
    snap = client.download(published.stub)

    assert snap == cache / "snapshots" / published.namespace / published.version.name / "1"
    for f in published.version.files:
        local = snap / f.path
        assert local.is_symlink() and not os.path.isabs(os.readlink(local))
        assert local.read_bytes() == (published.folder / f.path).read_bytes()
    # model.onnx and deployment/model.onnx share one blob: stored once.
    assert blobs_of(cache) == sorted({f.sha256 for f in published.version.files})
    assert json.loads((snap / ".zoo-manifest.json").read_text())["number"] == 1
    assert incomplete(cache) == []

    # Everything cached: a second download (pinned) sends nothing at all, and a fresh client
    # does not even make its HTTP clients (importing httpx is a third of a cached start-up).
    rec.seen.clear()
    assert client.download(published.stub) == snap
    assert rec.seen == []
    fresh = make_client(hub.url, cache=cache)
    assert fresh.download(published.stub) == snap
    assert fresh._http is None


def test_include_exclude_and_dry_run(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, cache=tmp_path / "c")
    plan = client.plan(published.stub, include=["sample-*/*", "model.onnx"])
    assert sorted(f.path for f in plan.files) == [
        "model.onnx",
        "sample-inputs/inp-0000.npz",
        "sample-outputs/out-0000.npz",
    ]
    assert plan.fetch_bytes == plan.total_bytes
    client.download(published.stub, exclude=["training"])
    plan = client.plan(published.stub)
    assert [f.path for f in plan.missing] == ["training/weights.bin"]
    assert plan.fetch_bytes == 3 * 4096 * 256


def test_download_into_a_directory_copies(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, cache=tmp_path / "c")
    out = client.download(published.stub, directory=tmp_path / "out", include=["model.onnx"])
    assert not (out / "model.onnx").is_symlink()
    assert (out / "model.onnx").read_bytes() == (published.folder / "model.onnx").read_bytes()


def test_token_is_never_sent_to_the_store(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    rec = Recorder()
    client = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "c", transport=rec)
    client.download(published.stub)
    hub_origin = hub.url.removeprefix("http://")
    to_hub = [r for r in rec.seen if f"{r.url.host}:{r.url.port}" == hub_origin]
    elsewhere = [r for r in rec.seen if r not in to_hub]
    assert to_hub and all(r.headers["authorization"].startswith("Bearer") for r in to_hub)
    assert all("authorization" not in r.headers for r in elsewhere)
    if hub.name == "postgres-s3":  # every file GET answered 302 to a presigned URL
        assert len(elsewhere) == len({f.sha256 for f in published.version.files})
        assert all("X-Amz-Signature" in str(r.url) for r in elsewhere)
    else:
        assert elsewhere == []


def test_resume_after_the_connection_drops(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("drop", match="", after=1_000_000))
        client = make_client(proxy.url, cache=tmp_path / "c")
        path = client.download_file(published.stub, "training/weights.bin")
        assert path.read_bytes() == (published.folder / "training/weights.bin").read_bytes()
        ranges = [r.headers.get("range") for r in proxy.bytes_requests()]
    # On S3 each attempt is two GETs: the hub's 302, then the presigned URL (same Range).
    per_attempt = 2 if hub.name == "postgres-s3" else 1
    assert ranges == [None] * per_attempt + ["bytes=1000000-"] * per_attempt
    assert incomplete(tmp_path / "c") == []


def test_a_200_where_206_was_asked_restarts_cleanly(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("drop", match="", after=500_000))
        proxy.add(Fault("ignore_range", match="", times=5))
        client = make_client(proxy.url, cache=tmp_path / "c")
        path = client.download_file(published.stub, "training/weights.bin")
    expected = (published.folder / "training/weights.bin").read_bytes()
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(expected).digest()


def assert_corruption_caught(
    hub: Hub, published: Published, make_client: MakeClient, cache: Path, at: int
) -> None:
    """A byte of training/weights.bin flipped at offset ``at`` in transit: IntegrityError,
    and nothing of that file is kept."""
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("corrupt", match="", after=at))
        client = make_client(proxy.url, cache=cache)
        with pytest.raises(zoo.IntegrityError, match="corrupted"):
            client.download_file(published.stub, "training/weights.bin")
    assert blobs_of(cache) == [] and incomplete(cache) == []
    snap = cache / "snapshots" / published.namespace / published.version.name / "1"
    assert not (snap / "training/weights.bin").exists()


def test_a_corrupted_byte_is_detected_and_nothing_is_kept(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    assert_corruption_caught(hub, published, make_client, tmp_path / "c", 123_456)


def test_retries_429_and_503_honouring_retry_after(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("status", match="/resolve", status=429, retry_after="1"))
        proxy.add(Fault("status", match="", status=503, retry_after="1"))
        client = make_client(proxy.url, cache=tmp_path / "c")
        start = time.monotonic()
        client.download_file(published.stub, "model.onnx")
        elapsed = time.monotonic() - start
    assert elapsed >= 2.0  # two Retry-After: 1 waits, not the 10 ms test backoff


def test_retry_after_beyond_the_limit_fails_at_once(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("status", match="/resolve", status=429, retry_after="3600"))
        client = make_client(proxy.url, cache=tmp_path / "c")
        start = time.monotonic()
        with pytest.raises(zoo.RateLimitedError, match="3600"):
            client.resolve(published.stub)
    assert time.monotonic() - start < 5


def test_pinned_cached_stub_opens_with_zero_requests(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    make_client(hub.url, cache=cache).download(published.path_stub + "@1")
    forbid = Recorder(forbid=True)
    client = make_client(hub.url, cache=cache, transport=forbid)
    for stub in (published.stub, published.path_stub + "@1"):
        model = zoo.Model(stub, client=client)
        assert model.onnx_model.read_bytes() == (published.folder / "model.onnx").read_bytes()
        assert model.version == 1
    assert forbid.seen == []


def test_offline_serves_from_the_cache_and_never_touches_the_network(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    make_client(hub.url, cache=cache).download(published.path_stub)  # latest, remembered
    forbid = Recorder(forbid=True)
    offline = make_client(hub.url, cache=cache, transport=forbid, offline=True)
    # An alias resolves through refs/ (online it would ask the hub: aliases move).
    assert offline.resolve(published.path_stub).number == 1
    assert zoo.Model(published.path_stub + "@latest", client=offline).sample_inputs
    with pytest.raises(zoo.OfflineError, match="ZOO_OFFLINE"):
        offline.resolve(f"zoo:{published.namespace}/unknown-model@1")
    assert forbid.seen == []


def test_offline_from_the_environment_with_nothing_listening(tmp_path: Path) -> None:
    # A fresh process: ZOO_OFFLINE=1 and an endpoint where nothing listens.
    env = {
        **os.environ,
        "ZOO_OFFLINE": "1",
        "ZOO_ENDPOINT": "http://127.0.0.1:9",
        "ZOO_CACHE": str(tmp_path / "c"),
    }
    code = "import zoo; zoo.Model('zoo:ns/name@1')"
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "OfflineError" in r.stderr and "ZOO_OFFLINE" in r.stderr
    assert time.monotonic() - start < 10


CONCURRENT = textwrap.dedent(
    """
    import sys, time, zoo
    from zoo import ZooClient, ZooConfig
    cfg = ZooConfig(endpoint=sys.argv[1], cache_dir=sys.argv[2], lock_timeout=60)
    # Start together, so both really race for the same blobs.
    while time.time() < float(sys.argv[4]):
        time.sleep(0.005)
    with ZooClient(config=cfg) as c:
        print(c.download(sys.argv[3]))
    """
)


def test_two_processes_download_the_same_model_at_once(
    hub: Hub, published: Published, tmp_path: Path
) -> None:
    cache = tmp_path / "shared"
    start_at = str(time.time() + 1.5)
    args = [sys.executable, "-c", CONCURRENT, hub.url, str(cache), published.stub, start_at]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    assert outs[0][0] == outs[1][0]
    assert blobs_of(cache) == sorted({f.sha256 for f in published.version.files})
    assert incomplete(cache) == []
    snap = Path(outs[0][0].decode().strip())
    for f in published.version.files:
        assert hashlib.sha256((snap / f.path).read_bytes()).hexdigest() == f.sha256


# -- big bodies: after the first chunk, the client reads the socket itself --------------------

BIG = 8 << 20  # past the 4 MiB after which the client reads the rest of a body off the socket
ZOO = str(Path(sys.executable).parent / "zoo")


@pytest.fixture
def published_big(hub: Hub, make_client: MakeClient, tmp_path: Path) -> Published:
    """A version with an 8 MiB file of bytes that never repeat."""
    writer = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "writer-cache")
    weights = random.Random(8).randbytes(BIG)
    return publish_model(hub, writer, tmp_path, {"training/weights.bin": weights})


def weights_of(published: Published) -> bytes:
    return (published.folder / "training/weights.bin").read_bytes()


def test_a_big_file_arrives_whole_with_the_expected_requests(
    hub: Hub, published_big: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    rec = Recorder()
    client = make_client(hub.url, cache=cache, transport=rec)
    seen: list[int] = []
    snap = client.download(published_big.stub, progress=seen.append)
    assert (snap / "training/weights.bin").read_bytes() == weights_of(published_big)
    assert sum(seen) == sum({f.sha256: f.size for f in published_big.version.files}.values())
    assert incomplete(cache) == []
    # Nothing needed a retry: one request per blob (two on S3: the hub's redirect, the store).
    per_blob = 2 if hub.name == "postgres-s3" else 1
    files = [r for r in rec.seen if "/files/" in r.url.path or "X-Amz-Signature" in str(r.url)]
    assert len(files) == per_blob * len({f.sha256 for f in published_big.version.files})
    # The connections those bodies came on were closed, not reused; the next request works.
    assert [v["number"] for v in client.list_versions(published_big.stub)] == [1]


@pytest.mark.parametrize("workers", [1, 4])
def test_the_biggest_file_is_fetched_first(
    hub: Hub, published_big: Published, make_client: MakeClient, tmp_path: Path, workers: int
) -> None:
    # The long transfer starts at once. One worker: the order shows. Four: the big file's
    # request still goes first and alone; the others are sent once its body arrives (at the
    # same server they would hold up its first byte).
    rec = Recorder()
    client = make_client(hub.url, cache=tmp_path / "c", transport=rec)
    client.config = client.config.replace(workers=workers)
    client.download(published_big.stub)
    fetched = [r.url.path for r in rec.seen if "/files/" in r.url.path]
    assert fetched[0].endswith("/files/training/weights.bin"), fetched
    assert len(fetched) == len({f.sha256 for f in published_big.version.files})


def test_a_corrupted_byte_deep_in_a_big_body_is_detected_and_nothing_is_kept(
    hub: Hub, published_big: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    # Past the first chunk: those bytes are read off the socket, not through httpx.
    assert_corruption_caught(hub, published_big, make_client, tmp_path / "c", 5_000_001)


@pytest.mark.parametrize(
    ("kind", "after", "extra", "second_range"),
    [
        pytest.param("drop", 5_000_000, 0, "bytes=5000000-", id="drop"),
        # Content-Length 100 kB short: the body ends early; the rest comes on a resume.
        pytest.param("wrong_length", 0, -100_000, f"bytes={BIG - 100_000}-", id="short"),
        # Content-Length 100 kB too long: the client reads the declared size, no more.
        pytest.param("wrong_length", 0, 100_000, None, id="long"),
    ],
)
def test_a_big_body_cut_or_mislabelled_resumes_and_ends_verified(
    hub: Hub,
    published_big: Published,
    make_client: MakeClient,
    tmp_path: Path,
    kind: str,
    after: int,
    extra: int,
    second_range: str | None,
) -> None:
    # A fresh Fault per run: one made at collection would be spent by the first hub's run.
    fault = Fault(kind, match="", after=after, extra=extra)
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        proxy.add(fault)
        client = make_client(proxy.url, cache=cache)
        path = client.download_file(published_big.stub, "training/weights.bin")
        ranges = [r.headers.get("range") for r in proxy.bytes_requests()]
    assert fault.fired.is_set()
    assert path.read_bytes() == weights_of(published_big)
    per_attempt = 2 if hub.name == "postgres-s3" else 1
    expected = [None] + ([second_range] if second_range else [])
    assert ranges == [r for r in expected for _ in range(per_attempt)]
    assert incomplete(cache) == []


@pytest.mark.timeout(60)
def test_a_big_body_that_stalls_times_out_and_resumes(
    hub: Hub, published_big: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    # Past the first chunk the socket is read without httpx: its read timeout must hold there.
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        client = make_client(proxy.url, cache=cache)
        client.config = client.config.replace(read_timeout=2)
        client.resolve(published_big.stub)
        fault = Fault("stall", match="", after=6_000_000, delay=30)
        proxy.add(fault)
        start = time.monotonic()
        path = client.download_file(published_big.stub, "training/weights.bin")
        elapsed = time.monotonic() - start
        ranges = [r.headers.get("range") for r in proxy.bytes_requests()]
    assert fault.fired.is_set()
    assert path.read_bytes() == weights_of(published_big)
    assert elapsed < 15, elapsed  # one read timeout, not the proxy's 30 s stall
    assert ranges[-1] is not None and ranges[-1].startswith("bytes=")  # resumed, not restarted
    assert incomplete(cache) == []


def test_an_interrupted_download_leaves_no_visible_file(
    hub: Hub, published_big: Published, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        # 3 MB arrive, then the link goes quiet: the command is killed mid-body (Ctrl-C).
        stall = Fault("stall", match="", after=3_000_000, delay=30)
        proxy.add(stall)
        env = {**os.environ, "ZOO_ENDPOINT": proxy.url, "ZOO_CACHE": str(cache)}
        args = [ZOO, "download", published_big.stub, "--include", "training/*", "--quiet"]
        with subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            try:
                # Interrupt once 2 MB are on disk (the rest of the 3 MB may sit in a buffer).
                deadline = time.monotonic() + 30
                while sum(p.stat().st_size for p in incomplete(cache)) < 2_000_000:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.poll()
                    time.sleep(0.02)
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
            finally:
                proc.kill()
    assert proc.returncode == 130, err.decode()
    assert "nothing partial was kept" in err.decode()
    assert blobs_of(cache) == [] and incomplete(cache) == []
    snap = cache / "snapshots" / published_big.namespace / published_big.version.name / "1"
    assert not (snap / "training/weights.bin").exists()
