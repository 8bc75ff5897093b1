"""ZOO_VERIFY_OUTPUTS: after a commit the hub runs the sample inputs through zoo.runtime in the
background and records in the version's meta whether the sample outputs were reproduced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from support.hub import Hub, create_model, publish, unique_namespace
from support.live import live_server
from support.verify_models import alter_output, write_folder


@pytest.fixture(scope="module")
def verifying_hub(hub: Hub) -> Iterator[httpx.Client]:
    """A second app with verify_outputs on, over the same database and store as ``hub`` (blobs
    are shared across versions: a separate store would lack blobs the database says exist)."""
    settings = hub.settings.model_copy(update={"verify_outputs": True})
    with live_server(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {hub.admin_token}"}
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=60) as http:
            yield http


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _publish(http: httpx.Client, folder: Path) -> str:
    ns = unique_namespace()
    create_model(http, ns, name="tiny-mlp")
    body = publish(http, ns, "tiny-mlp", _files(folder))
    assert body["number"] == 1
    return f"/models/{ns}/tiny-mlp/versions/1"


def _meta_when_checked(http: httpx.Client, url: str, timeout: float = 90.0) -> dict[str, Any]:
    """Poll the version until the background check wrote its result (the first run compiles
    the runtime's kernels, hence the generous bound)."""
    deadline = time.monotonic() + timeout
    while True:
        meta: dict[str, Any] = http.get(url).json()["meta"]
        if "outputs_check" in meta or time.monotonic() > deadline:
            return meta
        time.sleep(0.2)


def test_matching_outputs_are_marked_reproduced(
    verifying_hub: httpx.Client, tmp_path: Path
) -> None:
    url = _publish(verifying_hub, write_folder(tmp_path))
    meta = _meta_when_checked(verifying_hub, url)
    assert meta.get("outputs_reproduced") is True, meta
    check = meta["outputs_check"]
    assert check["ok"] is True and check["samples"] == 3
    assert check["max_abs_err"] < 1e-5 and "reproduced" in check["detail"]


def test_an_altered_output_is_marked_not_reproduced(
    verifying_hub: httpx.Client, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path, seed=1)
    alter_output(folder, index=2)
    url = _publish(verifying_hub, folder)
    meta = _meta_when_checked(verifying_hub, url)
    assert meta.get("outputs_reproduced") is False, meta
    assert "sample 2, output 'logits'" in meta["outputs_check"]["detail"]
    assert meta["outputs_check"]["max_abs_err"] > 0.4


def test_a_quantized_model_is_reproduced_within_a_step(
    verifying_hub: httpx.Client, tmp_path: Path
) -> None:
    url = _publish(verifying_hub, write_folder(tmp_path, quantized=True))
    meta = _meta_when_checked(verifying_hub, url)
    assert meta.get("outputs_reproduced") is True, meta
    assert "quantized: one step" in meta["outputs_check"]["detail"]


def test_with_the_setting_off_nothing_is_recorded(hub: Hub, tmp_path: Path) -> None:
    assert hub.settings.verify_outputs is False
    http = hub.client(hub.admin_token)
    url = _publish(http, write_folder(tmp_path))
    time.sleep(1.0)  # time a background check would have had to start
    meta = http.get(url).json()["meta"]
    assert "outputs_reproduced" not in meta and "outputs_check" not in meta
