"""PostgreSQL restarts while commits are in flight, and again while the hub is idle.

A private cluster (its own initdb, its own port) is restarted under a hub served by
``zoo serve``: a commit either fully succeeds or stays invisible and answers 503 naming the
database; committing the same upload again succeeds; numbering has no gap and no duplicate;
and the first request after a restart of an idle hub does not trip over a dead pooled
connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg
import pytest

from app.config import Settings
from support.fault_checks import assert_all_complete
from support.hub import create_model, manifest, unique_namespace, upload_blobs
from support.processes import (
    HubProcess,
    PrivatePostgres,
    hub_process,
    postgres_bin,
    private_postgres,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs a PostgreSQL server installed (apt-get install postgresql)",
)

MiB = 1024 * 1024
COMMITS = 4


@contextmanager
def hub_on(pg: PrivatePostgres, tmp_path: Path) -> Iterator[tuple[HubProcess, httpx.Client]]:
    """`zoo serve` on ``pg``, blobs under ``tmp_path / "store"``, and an admin API client."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=pg.url,
        storage="filesystem",
        storage_root=tmp_path / "store",
    )
    with (
        hub_process(settings) as hub,
        httpx.Client(
            base_url=f"{hub.url}/api/v1",
            headers={"Authorization": f"Bearer {hub.admin_token}"},
            timeout=120,
        ) as http,
    ):
        yield hub, http


def lock_waiters(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    ).fetchone()
    return int(str(row[0])) if row else 0


def blob_files(root: Path) -> list[Path]:
    return [p for p in (root / "blobs").rglob("*") if p.is_file()]


def staged_leftovers(root: Path) -> list[str]:
    return [
        str(Path(d, f).relative_to(root))
        for d, _, names in os.walk(root)
        for f in names
        if not str(Path(d, f).relative_to(root)).startswith("blobs/")
    ]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_database_restart_during_commits_loses_nothing_and_shows_nothing_half_done(
    tmp_path: Path,
) -> None:
    with private_postgres() as pg:
        store = tmp_path / "store"
        with hub_on(pg, tmp_path) as (hub, http):
            ns = unique_namespace()
            create_model(http, ns, name="m")
            chunk = os.urandom(MiB)
            uploads = []
            for i in range(COMMITS):
                files = {"weights.bin": chunk * 8 + bytes([i])}
                r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
                assert r.status_code == 201, r.text
                upload_blobs(http, r.json(), files)
                uploads.append(r.json()["upload_id"])

            answers: dict[str, httpx.Response] = {}

            def commit(upload_id: str) -> None:
                answers[upload_id] = http.post(f"/uploads/{upload_id}/commit")

            # Hold the model row: each commit verifies and promotes its blob, then waits for
            # the row inside its open transaction, the worst moment to lose the database.
            locker = psycopg.connect(pg.conninfo)
            watcher = psycopg.connect(pg.conninfo, autocommit=True)
            try:
                locker.execute("SELECT id FROM models WHERE name = 'm' FOR UPDATE")
                threads = [threading.Thread(target=commit, args=(u,)) for u in uploads]
                for t in threads:
                    t.start()
                wait_until(
                    "the commits waiting for the model row",
                    lambda: lock_waiters(watcher) >= COMMITS,
                    timeout=120,
                )
                pg.restart("immediate")  # like a crash: no clean end of any session
            finally:
                for conn in (locker, watcher):
                    with suppress(psycopg.Error):
                        conn.close()
            for t in threads:
                t.join(timeout=180)
            assert len(answers) == COMMITS

            # Every commit was cut off inside its transaction: 503 naming the database, and
            # nothing visible (its blob was already promoted, its row never committed).
            for r in answers.values():
                assert r.status_code == 503, (r.status_code, r.text)
                error = r.json()["error"]
                assert error["code"] == "SERVICE_UNAVAILABLE"
                assert "database" in error["message"], error["message"]
            assert "Traceback" not in hub.output()
            assert http.get(f"/models/{ns}/m/versions").json() == []
            # Committing the same uploads again succeeds (their blobs are already in place);
            # the last one is given up instead, which leaves its blob orphaned.
            *retried, given_up = uploads
            for u in retried:
                r = http.post(f"/uploads/{u}/commit")
                assert r.status_code == 200, r.text
            assert http.delete(f"/uploads/{given_up}").status_code == 204
            assert sorted(assert_all_complete(hub.url, hub.admin_token, ns, "m")) == [1, 2, 3]

            # A restart while the hub is idle: its pooled connections are all dead, and the
            # very next requests (a read, then a write) must still succeed, first time.
            pg.restart("fast")
            r = http.get(f"/models/{ns}/m/versions")
            assert r.status_code == 200, r.text
            r = http.post("/models", json={"namespace": ns, "name": "after-restart"})
            assert r.status_code == 201, r.text

            blobs_before = blob_files(store)
            gc = hub.admin("gc", "--ttl-hours", "0")
            assert gc.returncode == 0, gc.stderr
            assert "1 orphaned blob(s) deleted" in gc.stdout, gc.stdout
            assert staged_leftovers(store) == []
            assert len(blob_files(store)) == len(blobs_before) - 1
            assert assert_all_complete(hub.url, hub.admin_token, ns, "m") == [3, 2, 1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_abort_sent_while_the_commit_runs_waits_and_is_refused(tmp_path: Path) -> None:
    """A client that timed out on a slow commit aborts; the hub must not accept both."""
    with private_postgres() as pg, hub_on(pg, tmp_path) as (hub, http):
        ns = unique_namespace()
        create_model(http, ns, name="m")
        files = {"weights.bin": os.urandom(MiB)}
        r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
        upload_blobs(http, r.json(), files)
        upload = r.json()["upload_id"]
        answers: dict[str, httpx.Response] = {}

        def send(method: str) -> None:
            path = f"/uploads/{upload}" + ("/commit" if method == "POST" else "")
            answers[method] = http.request(method, path)

        locker = psycopg.connect(pg.conninfo)
        watcher = psycopg.connect(pg.conninfo, autocommit=True)
        try:
            # The commit stops at the model row, mid-transaction; then the abort arrives.
            locker.execute("SELECT id FROM models WHERE name = 'm' FOR UPDATE")
            commit = threading.Thread(target=send, args=("POST",))
            commit.start()
            wait_until("the commit to wait", lambda: lock_waiters(watcher) >= 1)
            abort = threading.Thread(target=send, args=("DELETE",))
            abort.start()
            abort.join(timeout=2)
            locker.rollback()
            commit.join(timeout=60)
            abort.join(timeout=60)
        finally:
            for conn in (locker, watcher):
                with suppress(psycopg.Error):
                    conn.close()
        assert answers["POST"].status_code == 200, answers["POST"].text
        assert answers["DELETE"].status_code == 409, answers["DELETE"].text
        assert "is ready" in answers["DELETE"].json()["error"]["message"]
        assert assert_all_complete(hub.url, hub.admin_token, ns, "m") == [1]
