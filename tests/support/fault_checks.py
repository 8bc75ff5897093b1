"""Checks the fault tests make after a crash: the cache holds only verified blobs, the hub shows
only complete versions."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def assert_cache_sound(cache: Path) -> int:
    """Every complete blob hashes to its name, every snapshot link resolves to a complete blob,
    and nothing under ``.incomplete`` is linked from a snapshot; the number of blobs."""
    blobs = cache / "blobs"
    complete = [p for p in blobs.iterdir() if p.is_file()] if blobs.is_dir() else []
    for blob in complete:
        assert sha256_of(blob) == blob.name, f"corrupt cache entry {blob}"
    snapshots = cache / "snapshots"
    for dirpath, _, filenames in os.walk(snapshots):
        for name in filenames:
            entry = Path(dirpath) / name
            if name == ".zoo-manifest.json":
                continue
            target = entry.resolve()
            assert ".incomplete" not in target.parts, f"{entry} points at a partial download"
            if target.parent == blobs.resolve():
                assert target.is_file(), f"{entry} points at a missing blob"
    return len(complete)


def versions(hub_url: str, token: str, namespace: str, name: str) -> list[dict[str, Any]]:
    """The versions the hub lists for a model ([] when the model has none or does not exist)."""
    r = httpx.get(
        f"{hub_url}/api/v1/models/{namespace}/{name}/versions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return list(r.json())


def assert_all_complete(hub_url: str, token: str, namespace: str, name: str) -> list[int]:
    """Every listed version's files download with their declared size and sha256; the numbers
    (newest first), which must be 1..n without a gap or a duplicate."""
    auth = {"Authorization": f"Bearer {token}"}
    numbers = [v["number"] for v in versions(hub_url, token, namespace, name)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"numbering: {numbers}"
    with httpx.Client(headers=auth, timeout=60) as http:
        for number in numbers:
            r = http.get(f"{hub_url}/api/v1/models/{namespace}/{name}/versions/{number}")
            assert r.status_code == 200, r.text
            for f in r.json()["files"]:
                # httpx drops the token on the redirect to another origin (a presigned URL).
                got = http.get(f["url"], follow_redirects=True)
                assert got.status_code == 200, (f["path"], got.status_code)
                assert len(got.content) == f["size"], f["path"]
                assert hashlib.sha256(got.content).hexdigest() == f["sha256"], f["path"]
    return numbers
