"""The filesystem backend under concurrency: promotes that empty and prune a shared folder
while other threads write into it must all succeed (a commit race seen in CI)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.storage import FilesystemStorage, blob_key
from app.storage.verify import promote_verified


def test_concurrent_promotes_through_a_pruned_folder(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "store")
    storage.ensure_ready()

    def one(i: int) -> str:
        data = f"blob {i}".encode() * 100
        sha = hashlib.sha256(data).hexdigest()
        staged = f"staging/u{i}/{sha}"
        storage.write_stream(staged, [data])
        # verifying/ is emptied and pruned by every promote while others move into it.
        promote_verified(storage, staged, blob_key(sha), size=len(data), sha256=sha)
        return sha

    with ThreadPoolExecutor(8) as pool:
        shas = list(pool.map(one, range(400)))
    assert all(storage.exists(blob_key(s)) for s in shas)
    assert list(storage.list_keys("staging/")) == []
    assert list(storage.list_keys("verifying/")) == []
