"""A large blob published through presigned multipart part URLs (S3 backend), end to end."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.storage import blob_key
from app.storage_factory import make_storage
from support.fixtures import S3Target
from support.hub import migrate_with_admin
from support.live import live_server
from support.s3 import remove_bucket

PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture(scope="module")
def s3_hub(
    s3_target: S3Target, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Settings]]:
    tmp: Path = tmp_path_factory.mktemp("multipart")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp,
        storage="s3",
        s3_endpoint_url=s3_target.endpoint_url,
        s3_bucket=f"zoo-test-{secrets.token_hex(5)}",
        s3_region=s3_target.region,
        s3_access_key_id=s3_target.access_key_id,
        s3_secret_access_key=s3_target.secret_access_key,
        multipart_threshold_bytes=PART,
        multipart_part_bytes=PART,
    )
    token = migrate_with_admin(settings, "mp")
    with live_server(create_app(settings)) as url:
        yield url, token, settings
    remove_bucket(s3_target, settings.s3_bucket)


def test_multipart_publish_and_download(s3_hub: tuple[str, str, Settings]) -> None:
    url, token, settings = s3_hub
    data = os.urandom(2 * PART + 12345)
    sha = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=auth, timeout=60) as http:
        assert http.post("/models", json={"namespace": "mp", "name": "big"}).status_code == 201
        r = http.post(
            "/models/mp/big/versions",
            json={"files": [{"path": "weights.bin", "size": len(data), "sha256": sha}]},
        )
        blob = r.json()["blobs"][0]
        assert blob["part_size"] == PART and [p["part_number"] for p in blob["parts"]] == [1, 2, 3]
        assert blob["authenticated"] is False
        # Committing before the parts are listed is refused and keeps the upload open.
        etags = []
        for part in blob["parts"]:
            start = (part["part_number"] - 1) * PART
            put = httpx.put(part["url"], content=data[start : start + PART], timeout=60)
            assert put.status_code == 200, put.text
            etags.append({"part_number": part["part_number"], "etag": put.headers["etag"]})
        early = http.post(f"/uploads/{r.json()['upload_id']}/commit")
        assert early.status_code == 400 and "multipart" in early.json()["error"]["message"]
        commit = http.post(
            f"/uploads/{r.json()['upload_id']}/commit",
            json={"multipart": [{"sha256": sha, "parts": etags}]},
        )
        assert commit.status_code == 200, commit.text
        assert commit.json()["number"] == 1
        got = httpx.get(
            f"{url}/api/v1/models/mp/big/versions/1/files/weights.bin",
            follow_redirects=True,
            timeout=60,
        )
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    assert make_storage(settings).exists(blob_key(sha))
