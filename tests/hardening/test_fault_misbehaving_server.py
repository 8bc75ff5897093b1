"""The client against a hub (and store) that answers slowly, stalls, hangs up, announces the
wrong Content-Length or asks to come back later: it retries within bounds and either ends with
verified bytes or fails with a clear error, and never waits longer than its timeouts allow.

Every test carries a pytest timeout, so a hang fails the test instead of the run. Elapsed
times are measured and bounded from both sides where the timeout itself is the subject.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from pathlib import Path

import pytest

from support.client_helpers import Published, config_for, publish_model
from support.fault_checks import assert_cache_sound, sha256_of, versions
from support.faults import Fault, fault_proxy
from support.hub import Hub
from zoo import NetworkError, ServerError, ZooClient

READ_TIMEOUT = 1.0


def client(
    endpoint: str, cache: Path, made: list[ZooClient], token: str | None = None, **changes: object
) -> ZooClient:
    cfg = config_for(endpoint, cache, token).replace(
        read_timeout=READ_TIMEOUT, connect_timeout=2.0, max_retries=2, **changes
    )
    c = ZooClient(config=cfg)
    made.append(c)
    return c


@pytest.fixture
def published(hub: Hub, tmp_path: Path, clients: list[ZooClient]) -> Published:
    """The seed model plus a 3 MiB file: big enough to stall or cut mid-body."""
    # Default timeouts: a commit on the S3 backend may take longer than READ_TIMEOUT.
    cfg = config_for(hub.url, tmp_path / "writer-cache", hub.admin_token)
    writer = ZooClient(config=cfg.replace(read_timeout=120))
    clients.append(writer)
    big = bytes(range(256)) * (3 * 4096)
    return publish_model(hub, writer, tmp_path, {"training/weights.bin": big})


def assert_downloaded(published: Published, snapshot: Path, cache: Path) -> None:
    for f in published.version.files:
        assert sha256_of(snapshot / f.path) == f.sha256, f.path
    assert assert_cache_sound(cache) == len({f.sha256 for f in published.version.files})


# -- metadata requests -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_slow_resolve_times_out_then_succeeds_on_retry(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("slow", match="/resolve", delay=4 * READ_TIMEOUT))
        c = client(proxy.url, tmp_path / "c", clients)
        start = time.monotonic()
        version = c.resolve(published.path_stub)
        elapsed = time.monotonic() - start
    assert version.number == published.version.number
    # One read timeout, then an answer: not before the timeout, not long after it.
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 10, elapsed
    assert sum(1 for r in proxy.requests if "/resolve" in r.path) == 2


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_fails_within_the_retry_bound(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("slow", match="/resolve", delay=30, times=100))
        c = client(proxy.url, tmp_path / "c", clients)
        start = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.resolve(published.path_stub)
        elapsed = time.monotonic() - start
    # max_retries=2: three attempts of one read timeout each, plus a little backoff.
    assert 3 * READ_TIMEOUT * 0.9 <= elapsed < 3 * READ_TIMEOUT + 10, elapsed
    assert "ReadTimeout" in str(err.value) and "ZOO_ENDPOINT" in str(err.value)
    assert sum(1 for r in proxy.requests if "/resolve" in r.path) == 3


@pytest.mark.timeout(60)
def test_search_survives_hangups_and_gives_up_on_a_dead_link(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    with fault_proxy(hub.url) as proxy:
        c = client(proxy.url, tmp_path / "c", clients)
        proxy.add(Fault("hangup", match="/models", method="GET", times=2))
        found = c.search(namespace=published.namespace)
        assert [m.name for m in found] == [published.version.name]

        proxy.add(Fault("hangup", match="/models", method="GET", times=100))
        start = time.monotonic()
        with pytest.raises(NetworkError, match="RemoteProtocolError"):
            list(c.search(namespace=published.namespace))
        assert time.monotonic() - start < 10


@pytest.mark.timeout(60)
def test_a_trickling_metadata_answer_is_cut_off_by_the_speed_floor(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    """The JSON of a metadata request under the same floor as file bytes: 50 bytes/s in
    5-byte steps never times out a read, and would take a minute for resolve's answer."""
    with fault_proxy(hub.url) as proxy:
        c = client(proxy.url, tmp_path / "c", clients, min_speed=1000.0)
        proxy.add(Fault("slow", match="/resolve", method="GET", rate=50, times=100))
        start = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.resolve(published.path_stub)
        elapsed = time.monotonic() - start
    assert "came too slowly" in str(err.value) and "below the floor" in str(err.value), err.value
    # Three attempts (max_retries=2) of about one READ_TIMEOUT window each, plus back-off.
    assert 3 * READ_TIMEOUT <= elapsed < 3 * READ_TIMEOUT + 15, elapsed
    assert sum(1 for r in proxy.requests if "/resolve" in r.path) == 3


@pytest.mark.timeout(60)
def test_503_storm_with_retry_after_ends_with_a_server_error(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    with fault_proxy(hub.url) as proxy:
        proxy.add(Fault("status", match="/resolve", status=503, retry_after="1", times=100))
        c = client(proxy.url, tmp_path / "c", clients)
        start = time.monotonic()
        with pytest.raises(ServerError) as err:
            c.resolve(published.path_stub)
        elapsed = time.monotonic() - start
    assert err.value.status == 503
    # Retry-After: 1 was honoured twice (max_retries=2), then the client stopped.
    assert 2 * 0.9 <= elapsed < 12, elapsed
    assert sum(1 for r in proxy.requests if "/resolve" in r.path) == 3


# -- file bytes --------------------------------------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault("slow", match="", method="GET", delay=3 * READ_TIMEOUT), id="slow"),
        pytest.param(Fault("stall", match="", after=1_000_000, delay=30), id="stall"),
        pytest.param(Fault("wrong_length", match="", extra=100_000), id="length-too-large"),
        pytest.param(Fault("wrong_length", match="", extra=-100_000), id="length-too-small"),
        pytest.param(Fault("drop", match="", after=700_000, times=3), id="drops"),
    ],
)
def test_download_through_a_misbehaving_link_ends_verified(
    hub: Hub,
    published: Published,
    tmp_path: Path,
    clients: list[ZooClient],
    fault: Fault,
) -> None:
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        c = client(proxy.url, cache, clients)
        version = c.resolve(published.stub)  # metadata first: the fault is for the bytes
        # A fresh copy per run: the parameter is built once at collection and shared by both
        # hub configurations, and a fault fires only ``times`` times.
        fault = dataclasses.replace(fault, fired=threading.Event())
        proxy.add(fault)
        start = time.monotonic()
        snapshot = c.download(published.stub)
        elapsed = time.monotonic() - start
        assert fault.fired.is_set(), "the fault never fired: the test proves nothing"
    assert version.number == published.version.number
    assert_downloaded(published, snapshot, cache)
    # A stall costs one read timeout; nothing waits for the proxy's 30 s.
    assert elapsed < 25, elapsed


@pytest.mark.timeout(90)
def test_a_download_that_keeps_stalling_fails_with_a_clear_error_and_keeps_nothing(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        c = client(proxy.url, cache, clients)
        c.resolve(published.stub)
        # Headers, then nothing: no byte of progress on any attempt.
        proxy.add(Fault("stall", match="", after=0, delay=60, times=100))
        start = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.download(published.stub, include=["training/weights.bin"])
        elapsed = time.monotonic() - start
    assert "run the command again" in str(err.value)
    assert elapsed < 3 * READ_TIMEOUT + 15, elapsed
    assert assert_cache_sound(cache) == 0


@pytest.mark.timeout(90)
def test_a_trickling_download_is_cut_off_by_the_speed_floor(
    hub: Hub, published: Published, tmp_path: Path, clients: list[ZooClient]
) -> None:
    """A server that answers a little inside every read timeout never times out a read; the
    speed floor ends each attempt after one window, and the trickle's progress does not
    reset the retry count (it would never end otherwise)."""
    cache = tmp_path / "c"
    with fault_proxy(hub.url) as proxy:
        c = client(proxy.url, cache, clients, min_speed=100_000.0)
        c.resolve(published.stub)
        # 2 kB/s in 200-byte steps every 0.1 s: each read waits far less than READ_TIMEOUT.
        proxy.add(Fault("slow", match="", method="GET", rate=2000, times=100))
        start = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.download(published.stub, include=["training/weights.bin"])
        elapsed = time.monotonic() - start
    assert "below the floor" in str(err.value), err.value
    # Three attempts (max_retries=2) of one READ_TIMEOUT window each, plus back-off.
    assert elapsed < 3 * READ_TIMEOUT + 15, elapsed
    assert assert_cache_sound(cache) == 0


# -- uploads -----------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_publish_through_hangups_and_a_lost_commit_answer(
    hub: Hub, tmp_path: Path, clients: list[ZooClient]
) -> None:
    with fault_proxy(hub.url) as proxy:
        writer = ZooClient(
            config=config_for(proxy.url, tmp_path / "w", hub.admin_token).replace(
                max_retries=2, read_timeout=120
            )
        )
        clients.append(writer)
        # A blob PUT cut off before the hub saw it: PUT is idempotent, the client sends again.
        hangup = Fault("hangup", match="", method="PUT", times=1)
        proxy.add(hangup)
        extra = {"extra.bin": secrets.token_bytes(100_000)}  # new bytes: the hub must ask for them
        published = publish_model(hub, writer, tmp_path / "a", extra)
        assert hangup.fired.is_set()
        assert versions(hub.url, hub.admin_token, published.namespace, published.version.name)

        # The commit cut off before the hub saw it: not retried (a POST), the upload is
        # aborted, no version appears; the next publish gets number 2.
        proxy.add(Fault("hangup", match="/commit", method="POST", times=1))
        with pytest.raises(NetworkError):
            writer.publish(
                published.folder, published.stub.split("@")[0], namespace=published.namespace
            )
        listed = versions(hub.url, hub.admin_token, published.namespace, published.version.name)
        assert [v["number"] for v in listed] == [1]
        again = writer.publish(
            published.folder, published.stub.split("@")[0], namespace=published.namespace
        )
        assert again.number == 2

        # The commit went through but its answer was lost: the client finds the version it
        # made instead of failing (and the caller publishing the same folder twice).
        lost = Fault("lose_response", match="/commit", method="POST")
        proxy.add(lost)
        third = writer.publish(
            published.folder, published.stub.split("@")[0], namespace=published.namespace
        )
        assert lost.fired.is_set()
        assert third.number == 3
        listed = versions(hub.url, hub.admin_token, published.namespace, published.version.name)
        assert [v["number"] for v in listed] == [3, 2, 1]
