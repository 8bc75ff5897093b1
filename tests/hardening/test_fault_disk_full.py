"""The filesystem backend's disk fills up during an upload (a small tmpfs as the storage root):
the hub answers 507 naming the problem (not a 500 with a traceback), nothing is visible, no
partial file remains, and once space is freed the same publish succeeds."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from app.config import Settings
from support.client_helpers import config_for, model_folder
from support.fault_checks import assert_all_complete, versions
from support.hub import unique_namespace
from support.processes import hub_process, is_root, tmpfs
from zoo import ServerError, ZooClient

pytestmark = pytest.mark.skipif(
    not is_root(), reason="mounting a tmpfs needs root (CI runs the suite as root)"
)

MiB = 1024 * 1024


def files_under(root: Path) -> list[str]:
    return sorted(str(Path(d, f).relative_to(root)) for d, _, names in os.walk(root) for f in names)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_full_disk_fails_the_upload_cleanly_and_the_next_attempt_succeeds(
    tmp_path: Path, clients: list[ZooClient]
) -> None:
    with tmpfs(tmp_path / "store", "16m") as root:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path / "data", storage="filesystem", storage_root=root
        )
        with hub_process(settings) as hub:
            # Leave about 4 MiB free, then publish a folder with an 8 MiB file.
            filler = root / "filler.bin"
            filler.write_bytes(b"\0" * (12 * MiB))
            big = secrets.token_bytes(8 * MiB)
            folder = model_folder(tmp_path, {"weights.bin": big})
            ns, name = unique_namespace(), "full"
            cfg = config_for(hub.url, tmp_path / "cache", hub.admin_token)
            writer = ZooClient(config=cfg.replace(read_timeout=120))
            clients.append(writer)

            with pytest.raises(ServerError) as err:
                writer.publish(folder, f"zoo:{ns}/{name}", namespace=ns)
            assert err.value.status == 507, err.value
            assert err.value.code == "INSUFFICIENT_STORAGE"
            assert "storage is full" in str(err.value) and "free space" in str(err.value)
            assert "Traceback" not in hub.output()
            # Nothing visible, nothing half-written: the client aborted the upload, and the hub
            # removed its temp file and the blobs it had staged.
            assert versions(hub.url, hub.admin_token, ns, name) == []
            assert files_under(root) == ["filler.bin"]
            gc = hub.admin("gc", "--ttl-hours", "0")
            assert gc.returncode == 0, gc.stderr
            assert files_under(root) == ["filler.bin"]

            filler.unlink()
            version = writer.publish(folder, f"zoo:{ns}/{name}", namespace=ns)
            assert version.number == 1
            assert assert_all_complete(hub.url, hub.admin_token, ns, name) == [1]
