"""The real ``zoo`` CLI is SIGKILLed mid-upload and mid-download (on both hub configurations).

The transfer is held in the middle by the fault proxy (a blob PUT that waits before its body
is read; a download that stalls after its first megabyte), and the process is killed right
then. Afterwards: no version is visible, the cache holds no file whose bytes do not match its
digest and no snapshot points at a partial file, the next publish/download succeeds, and
``zoo admin gc`` aborts the abandoned upload and deletes what it had staged.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.orm import Model, Namespace, Version, VersionStatus
from app.storage.keys import STAGING_PREFIX
from app.storage_factory import make_storage
from support.client_helpers import model_folder
from support.fault_checks import assert_all_complete, assert_cache_sound, sha256_of, versions
from support.faults import Fault, fault_proxy
from support.hub import Hub, unique_namespace
from support.processes import ZOO, clean_env, kill, zoo_admin

MiB = 1024 * 1024


def cli(endpoint: str, token: str, cache: Path, *args: str) -> subprocess.Popen[bytes]:
    env = clean_env(
        {"ZOO_ENDPOINT": endpoint, "ZOO_TOKEN": token, "ZOO_CACHE": str(cache), "HOME": str(cache)}
    )
    return subprocess.Popen([ZOO, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> str:
    out, _ = process.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text
    return text


def uploads_of(hub: Hub, namespace: str, name: str) -> dict[str, VersionStatus]:
    with hub.sessionmaker() as s:
        rows = s.execute(
            select(Version.upload_id, Version.status)
            .join(Version.model)
            .join(Model.namespace)
            .where(Namespace.name == namespace, Model.name == name)
        ).all()
    return {upload: status for upload, status in rows}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_publish_killed_mid_upload_leaves_nothing_visible_and_gc_collects_it(
    hub: Hub, tmp_path: Path
) -> None:
    ns, name = unique_namespace(), "killed"
    folder = model_folder(tmp_path, {"weights.bin": secrets.token_bytes(3 * MiB)})
    args = ("publish", str(folder), "--stub", f"zoo:{ns}/{name}", "--namespace", ns, "-q")
    with fault_proxy(hub.url) as proxy:
        stalled = Fault("slow", match="", method="PUT", delay=60)
        proxy.add(stalled)
        process = cli(proxy.url, hub.admin_token, tmp_path / "cache", *args)
        try:
            assert stalled.fired.wait(60), "the upload never started"
            time.sleep(0.2)
        finally:
            kill(process)
        assert process.returncode == -9

    assert versions(hub.url, hub.admin_token, ns, name) == []
    abandoned = [u for u, s in uploads_of(hub, ns, name).items() if s == VersionStatus.PENDING]
    assert len(abandoned) == 1

    gc = zoo_admin(hub.settings, "gc", "--ttl-hours", "0")
    assert gc.returncode == 0, gc.stderr
    assert "expired upload(s) aborted" in gc.stdout
    assert uploads_of(hub, ns, name)[abandoned[0]] == VersionStatus.ABORTED
    storage = make_storage(hub.settings)
    assert list(storage.list_keys(f"{STAGING_PREFIX}{abandoned[0]}/")) == []

    finish(cli(hub.url, hub.admin_token, tmp_path / "cache", *args))
    assert assert_all_complete(hub.url, hub.admin_token, ns, name) == [1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_download_killed_mid_transfer_keeps_no_corrupt_entry_and_resumes(
    hub: Hub, tmp_path: Path
) -> None:
    ns = unique_namespace()
    folder = model_folder(tmp_path, {"weights.bin": secrets.token_bytes(4 * MiB)})
    stub = f"zoo:{ns}/m"
    publish = ("publish", str(folder), "--stub", stub, "-q")
    finish(cli(hub.url, hub.admin_token, tmp_path / "w", *publish))
    cache = tmp_path / "cache"
    weights = sha256_of(folder / "weights.bin")
    download = ("download", f"{stub}@1", "-q")
    with fault_proxy(hub.url) as proxy:
        # The big blob's bytes stop after 1 MiB and the connection stays open. (On S3 its
        # bytes come from the store, through the proxy, under the blob's key.)
        match = weights if hub.settings.storage == "s3" else "/files/weights.bin"
        stalled = Fault("stall", match=match, after=MiB, delay=60)
        proxy.add(stalled)
        process = cli(proxy.url, hub.admin_token, cache, *download)
        try:
            assert stalled.fired.wait(60), "the download never started"
            time.sleep(0.5)  # the first megabyte reaches the partial file
        finally:
            kill(process)

        # Every complete entry is sound; the partial one is not visible as complete.
        assert_cache_sound(cache)
        assert not (cache / "blobs" / weights).exists()
        snapshot = cache / "snapshots" / ns / "m" / "1"
        assert not (snapshot / "weights.bin").exists()

        # The same command again (the link is fine now) completes, verified.
        finish(cli(proxy.url, hub.admin_token, cache, *download))
    assert assert_cache_sound(cache) >= 1
    for path in ("weights.bin", "model.onnx"):
        assert sha256_of(snapshot / path) == sha256_of(folder / path), path


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_rerun_after_a_killed_download_uses_the_current_endpoint(
    hub: Hub, tmp_path: Path
) -> None:
    ns = unique_namespace()
    folder = model_folder(tmp_path, {"weights.bin": secrets.token_bytes(2 * MiB)})
    stub = f"zoo:{ns}/m"
    finish(cli(hub.url, hub.admin_token, tmp_path / "w", "publish", str(folder), "--stub", stub))
    cache = tmp_path / "cache"
    weights = sha256_of(folder / "weights.bin")
    with fault_proxy(hub.url) as proxy:
        match = weights if hub.settings.storage == "s3" else "/files/weights.bin"
        stalled = Fault("stall", match=match, after=MiB, delay=60)
        proxy.add(stalled)
        process = cli(proxy.url, hub.admin_token, cache, "download", f"{stub}@1", "-q")
        try:
            assert stalled.fired.wait(60), "the download never started"
        finally:
            kill(process)
    # The proxy is gone; the hub itself is up.
    finish(cli(hub.url, hub.admin_token, cache, "download", f"{stub}@1", "-q"))
    assert assert_cache_sound(cache) >= 1
