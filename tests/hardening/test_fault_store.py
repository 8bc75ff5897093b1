"""The object store dies in the middle of a publish: SIGKILL of the Swift proxy process the hub
(and the client's presigned URLs) talk to, once while the client uploads multipart parts and
once while the hub verifies the blob in its commit.

A second ``swift-proxy-server`` is started for this test on the running Swift's rings and
storage nodes, behind the fault proxy (which slows the right request down so the kill lands
mid-flight, and tells the test when). Each time: the publish fails with a clear error, no
version is visible, the restarted store accepts the next attempt, and ``zoo admin gc`` leaves
no staged object, interrupted verification or unfinished multipart upload behind (Swift's s3api
refuses lifecycle rules, so gc is the only cleaner there).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import pytest

from app.config import Settings
from app.storage.base import MiB
from support.client_helpers import config_for, model_folder
from support.fault_checks import assert_all_complete, versions
from support.faults import Fault, FaultProxy, fault_proxy
from support.fixtures import S3Target
from support.hub import unique_namespace
from support.processes import HubProcess, SwiftProxy, hub_process, second_swift_proxy
from support.s3 import make_s3_storage, remove_bucket
from zoo import NetworkError, ServerError, ZooClient

pytestmark = pytest.mark.skipif(
    not os.environ.get("ZOO_TEST_S3_ENDPOINT"),
    reason="needs the Swift s3api of scripts/services/start.sh (ZOO_TEST_S3_ENDPOINT unset; "
    "CI always sets it)",
)


def store_leftovers(target: S3Target, bucket: str) -> list[str]:
    """Objects outside blobs/ and unfinished multipart uploads in the bucket."""
    storage = make_s3_storage(target, bucket)
    keys = [k for k in storage.list_keys() if not k.startswith("blobs/")]
    uploads = [f"multipart:{u.key}" for u in storage.list_multipart_uploads()]
    return keys + uploads


def restart_and_collect(swift: SwiftProxy, hub: HubProcess, target: S3Target, bucket: str) -> None:
    swift.start()
    gc = hub.admin("gc", "--ttl-hours", "0")
    assert gc.returncode == 0, gc.stderr
    assert store_leftovers(target, bucket) == [], gc.stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_store_killed_mid_upload_and_mid_commit(
    tmp_path: Path, s3_target: S3Target, clients: list[ZooClient]
) -> None:
    bucket = f"zoo-fault-{secrets.token_hex(5)}"
    with second_swift_proxy(tmp_path) as swift, fault_proxy(swift.url) as store:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "data",
            storage="s3",
            s3_endpoint_url=store.url,
            s3_bucket=bucket,
            s3_region=s3_target.region,
            s3_access_key_id=s3_target.access_key_id,
            s3_secret_access_key=s3_target.secret_access_key,
            # 5 MiB parts: a 12 MiB file is a three-part multipart upload.
            multipart_threshold_bytes=5 * MiB,
            multipart_part_bytes=5 * MiB,
        )
        try:
            with hub_process(settings) as hub:
                run_scenarios(tmp_path, hub, swift, store, s3_target, bucket, clients)
        finally:
            if swift.process is None or swift.process.poll() is not None:
                swift.start()
            remove_bucket(s3_target, bucket)


def run_scenarios(
    tmp_path: Path,
    hub: HubProcess,
    swift: SwiftProxy,
    store: FaultProxy,
    target: S3Target,
    bucket: str,
    clients: list[ZooClient],
) -> None:
    cfg = config_for(hub.url, tmp_path / "cache", hub.admin_token).replace(
        read_timeout=120, max_retries=2
    )
    writer = ZooClient(config=cfg)
    clients.append(writer)
    folder = model_folder(tmp_path, {"weights.bin": secrets.token_bytes(12 * MiB)})
    ns, name = unique_namespace(), "m"
    stub = f"zoo:{ns}/{name}"

    # 1. Killed while the client PUTs a part to its presigned URL.
    part = Fault("slow", match="uploadId=", method="PUT", delay=1.0)
    store.add(part)
    killer = _kill_when(part, swift)
    with pytest.raises(NetworkError) as err:
        writer.publish(folder, stub, namespace=ns)
    killer.join()
    assert "cannot reach" in str(err.value), err.value
    assert versions(hub.url, hub.admin_token, ns, name) == []
    restart_and_collect(swift, hub, target, bucket)

    # 2. Killed while the hub hashes the completed blob inside the commit: the bytes trickle
    # from the store, so the commit is surely in flight.
    verifying = Fault("slow", match="/verifying/", method="GET", rate=2 * MiB)
    store.add(verifying)
    killer = _kill_when(verifying, swift, after=0.5)
    with pytest.raises(ServerError) as failed:
        writer.publish(folder, stub, namespace=ns)
    killer.join()
    assert failed.value.status == 503, failed.value
    assert failed.value.code == "SERVICE_UNAVAILABLE"
    assert "object store" in str(failed.value) and "Try again" in str(failed.value)
    assert "Traceback" not in hub.output()
    assert versions(hub.url, hub.admin_token, ns, name) == []
    restart_and_collect(swift, hub, target, bucket)

    # 3. The store is back: the same publish succeeds, complete, numbered 1.
    assert writer.publish(folder, stub, namespace=ns).number == 1
    assert assert_all_complete(hub.url, hub.admin_token, ns, name) == [1]
    assert store_leftovers(target, bucket) == []


def _kill_when(fault: Fault, swift: SwiftProxy, after: float = 0.0) -> _Killer:
    killer = _Killer(fault, swift, after)
    killer.start()
    return killer


class _Killer:
    """SIGKILLs the store ``after`` seconds once ``fault`` fired (in a thread)."""

    def __init__(self, fault: Fault, swift: SwiftProxy, after: float) -> None:
        self.fault, self.swift, self.after = fault, swift, after
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        if self.fault.fired.wait(60):
            time.sleep(self.after)
            self.swift.kill()

    def join(self) -> None:
        self.thread.join(timeout=70)
        assert self.fault.fired.is_set(), "the fault never fired: the kill did not happen"
