"""The scale-out shape (issue #8): two hub processes on one PostgreSQL and one S3 bucket.

- Under a bounded load (50 ``zoo`` clients for 60 s by default, round-robin over two
  ``zoo serve`` processes) concurrent publishes get consecutive numbers with no gap or
  duplicate, ``latest`` always names a ready version whose files download and verify, the
  download counters add up, and no request gets a 5xx. The per-operation table (throughput,
  p50, p99) is printed into the test output.
- Replicas that start together migrate one fresh database without racing (each ``zoo serve``
  migrates at boot; they used to collide creating the same tables and one crashed).
- A commit never waits for a worker thread while it holds the model's row lock (it used to:
  its response was validated in the thread pool before the transaction ended, so downloads of
  the same model blocked on that lock could take every worker thread, and the hub hung).
- One upload committed twice at once (a retry) is numbered once: one 200, one 409, no gap
  (the second used to renumber the same version one past the first).
- The invariant checker itself flags each kind of fault (a doctored run; no services needed).

Needs the real services (``ZOO_TEST_DATABASE_URL``, ``ZOO_TEST_S3_ENDPOINT``); skipped with
that reason otherwise. ``ZOO_SCALE_OUT_CLIENTS`` / ``ZOO_SCALE_OUT_SECONDS`` size the load.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio.to_thread
import httpx
import psycopg
import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.orm import Model
from app.tokens.service import create_token
from support.databases import fresh_database
from support.hub import create_model, manifest, publish, unique_namespace, upload_blobs
from support.live import live_server
from support.onnx_models import linear_model
from support.scale_out import (
    MISSING_SERVICES,
    OPERATIONS,
    LoadConfig,
    Recorder,
    RunResult,
    Services,
    check_invariants,
    format_report,
    run_scale_out,
    scale_out_config_from_env,
)

SERVICES = Services.from_env()
needs_services = pytest.mark.skipif(SERVICES is None, reason=MISSING_SERVICES)


def _services() -> Services:
    assert SERVICES is not None  # the module is skipped otherwise
    return SERVICES


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.slow
@pytest.mark.services
@needs_services
@pytest.mark.timeout(300)
def test_two_processes_under_load(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_scale_out(_services(), scale_out_config_from_env())
    invariants = check_invariants(result)
    with capsys.disabled():
        print("\n" + format_report(result, invariants))
    broken = [f"{i.name}: {i.detail}" for i in invariants if not i.held]
    assert not broken, "\n".join(broken)


def _result(**changes: Any) -> RunResult:
    """A run where 3 versions were published and version 2 downloaded twice; ``changes``
    break it."""
    rec = Recorder()
    for op in OPERATIONS:
        rec.ok(op, 0.01)
    for n in (1, 2, 3):
        rec.publish_done(n, f"sha-{n}")
    for _ in range(2):
        rec.download_done(2, "sha-2")
    rec.counted_fetches[2] = 2
    fields: dict[str, Any] = {
        "config": LoadConfig(clients=1, seconds=1),
        "elapsed": 1.0,
        "recorder": rec,
        "namespace": "ns",
        "name": "m",
        "versions": [1, 2, 3],
        "latest": 3,
        "model_latest": 3,
        "model_downloads": 2,
        "version_downloads": {1: 0, 2: 2, 3: 0},
        "hub_primary_sha": {n: f"sha-{n}" for n in (1, 2, 3)},
        "pending_uploads": 0,
        "server_log_lines": 4,
        "server_log_errors": [],
        "server_log_warnings": [],
        "load_before": "",
        "load_after": "",
    }
    return RunResult(**{**fields, **changes})


def test_the_invariants_hold_for_a_sound_run_and_catch_each_fault() -> None:
    assert all(i.held for i in check_invariants(_result()))

    def broken(**changes: Any) -> set[str]:
        return {i.name for i in check_invariants(_result(**changes)) if not i.held}

    assert broken(versions=[1, 3]) == {"the hub lists exactly versions 1..K"}
    assert broken(latest=2) == {"latest == K (resolve and the model's latest_version)"}
    counters = "download counters == completed downloads (model and per version)"
    assert broken(model_downloads=1) == {counters}
    assert broken(version_downloads={1: 1, 2: 1, 3: 0}) == {counters}
    assert broken(hub_primary_sha={1: "sha-1", 2: "sha-x", 3: "sha-3"}) == {
        "each version holds, and every download got, its publisher's bytes"
    }
    assert broken(pending_uploads=1) == {"no upload left pending"}
    assert broken(server_log_errors=["ERROR: boom"]) == {"no error in the hub processes' logs"}
    full = "WARNING urllib3.connectionpool: Connection pool is full, discarding connection"
    assert broken(server_log_warnings=[full]) == {
        "no connection pool of a hub overflowed (S3 client)"
    }
    gap = _result()
    gap.recorder.published[5] = gap.recorder.published.pop(3)
    assert "publishers got exactly 1..K, K = successful publishes" in {
        i.name for i in check_invariants(gap) if not i.held
    }
    failing = _result()
    failing.recorder.fail("download", "IntegrityError: sha256 mismatch")
    failing.recorder.server_errors.append("GET /api/v1/resolve -> 500")
    assert {i.name for i in check_invariants(failing) if not i.held} == {
        "no operation failed",
        "no 5xx answer (retried ones included)",
    }


# --- replicas migrating at boot -----------------------------------------------------------

# Each process imports everything first, then sleeps until the same instant, so the upgrades
# really overlap (a staggered start would let the first finish before the next looks).
_MIGRATE = textwrap.dedent(
    """
    import sys, time
    from app import migrate
    from app.config import Settings
    settings = Settings(_env_file=None, database_url=sys.argv[1])
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    migrate.upgrade(settings)
    """
)


@pytest.mark.services
@needs_services
@pytest.mark.timeout(180)
@pytest.mark.parametrize("round_", range(3))
def test_replicas_migrate_one_fresh_database_at_the_same_moment(round_: int) -> None:
    with fresh_database(_services().database_url, prefix="zoo_migrate") as url:
        start = time.time() + 4  # after every interpreter has imported the app
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE, url, str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        failed = [out[-2000:] for p, out in zip(procs, outputs, strict=True) if p.returncode]
        assert not failed, f"{len(failed)} of 4 concurrent migrations failed:\n" + failed[0]
        with psycopg.connect(_conninfo(url)) as conn:
            versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
        assert versions == [head]


# --- the model's row lock and the worker threads ------------------------------------------

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def _with_worker_threads(app: FastAPI, tokens: int) -> ASGIApp:
    """``app`` with only ``tokens`` threads for sync routes and dependencies (default 40): the
    same exhaustion a busy hub reaches, with a handful of requests instead of forty."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = tokens
        await app(scope, receive, send)

    return wrapped


def _wait_for_lock_waiters(
    url: str, count: int, since: datetime | None = None, timeout: float = 15.0
) -> None:
    """Until ``count`` transactions (begun after ``since``, if given) wait on a lock."""
    database = make_url(url).database
    deadline = time.monotonic() + timeout
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock' AND xact_start > %s",
                (database, since or datetime(1970, 1, 1, tzinfo=UTC)),
            ).fetchone()
            waiting = int(row[0]) if row else 0
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"{waiting} lock waiters, expected {count}"
            time.sleep(0.05)


def _terminate_sessions(url: str) -> None:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (make_url(url).database,),
        )


@pytest.mark.services
@needs_services
@pytest.mark.timeout(120)
def test_commit_releases_the_model_lock_without_needing_a_worker_thread(tmp_path: Path) -> None:
    """Three worker threads; a commit waits on model M's row, two downloads of M wait behind
    it holding the other two threads, six more downloads of M queue for a thread. When the
    row frees, the commit must end its transaction without asking for a thread again (it used
    to, for validating its response: the queued downloads took the threads and blocked on the
    commit's row lock, and the hub hung)."""
    with fresh_database(_services().database_url, prefix="zoo_lock") as url:
        settings = Settings(
            _env_file=None, data_dir=tmp_path, database_url=url, storage="filesystem"
        )
        migrate.upgrade(settings)
        engine = make_engine(settings)
        factory = make_sessionmaker(engine)
        with factory() as s:
            _, token = create_token(s, name="admin", scopes=["admin"])
            s.commit()
        auth = {"Authorization": f"Bearer {token}"}
        app = _with_worker_threads(create_app(settings), 3)
        try:
            with (
                live_server(cast(FastAPI, app)) as base,
                httpx.Client(base_url=f"{base}/api/v1", headers=auth, timeout=30) as http,
            ):
                ns = unique_namespace()
                for name in ("m", "n"):
                    create_model(http, ns, name=name)
                    publish(http, ns, name, {"model.onnx": linear_model(0.5, seed=len(name))})
                v2 = {"model.onnx": linear_model(0.5, seed=2)}
                opened = http.post(f"/models/{ns}/m/versions", json={"files": manifest(v2)})
                assert opened.status_code == 201, opened.text
                upload = opened.json()
                upload_blobs(http, upload, v2)
                with factory() as s:
                    ids = {name: id_ for name, id_ in s.execute(select(Model.name, Model.id))}

                def commit() -> httpx.Response:
                    commit_url = f"{base}/api/v1/uploads/{upload['upload_id']}/commit"
                    return httpx.post(commit_url, headers=auth, timeout=20)

                def download(name: str) -> httpx.Response:
                    file_url = f"{base}/api/v1/models/{ns}/{name}/versions/1/files/model.onnx"
                    return httpx.get(file_url, headers=auth, timeout=20)

                lock_row = "SELECT 1 FROM models WHERE id = %s FOR UPDATE"
                with (
                    psycopg.connect(_conninfo(url)) as hold_m,
                    psycopg.connect(_conninfo(url)) as hold_n,
                    ThreadPoolExecutor(max_workers=12) as pool,
                ):
                    hold_m.execute(lock_row, (ids["m"],))
                    hold_n.execute(lock_row, (ids["n"],))
                    committing = pool.submit(commit)  # waits on M's row: thread 1
                    _wait_for_lock_waiters(url, 1)
                    others = [pool.submit(download, "n") for _ in range(2)]  # threads 2 and 3
                    _wait_for_lock_waiters(url, 3)
                    downloads = [pool.submit(download, "m") for _ in range(8)]
                    time.sleep(0.5)  # all eight queue for a thread, in order
                    row = hold_n.execute("SELECT clock_timestamp()").fetchone()
                    assert row is not None
                    hold_n.commit()  # they advance in step; two block on M, six wait at M
                    _wait_for_lock_waiters(url, 2, since=row[0])
                    time.sleep(0.3)
                    hold_m.commit()  # the commit gets M's row first and must finish
                    started = time.monotonic()
                    try:
                        committed = committing.result(timeout=25)
                        fetched = [d.result(timeout=25) for d in downloads + others]
                    except (httpx.TimeoutException, TimeoutError) as e:
                        _terminate_sessions(url)  # break the deadlock so the server can stop
                        raise AssertionError(
                            "the commit and the downloads waiting on its row lock hung: the "
                            f"commit waited for a worker thread the downloads held ({e!r})"
                        ) from e
                    elapsed = time.monotonic() - started
        finally:
            engine.dispose()
    assert committed.status_code == 200, committed.text
    assert committed.json()["number"] == 2
    assert [r.status_code for r in fetched] == [200] * 10
    assert elapsed < 10, f"the commit and the downloads took {elapsed:.1f} s after the lock"


# --- one upload committed twice at once -----------------------------------------------------


@pytest.mark.services
@needs_services
@pytest.mark.timeout(120)
def test_an_upload_committed_twice_at_once_gets_one_number(tmp_path: Path) -> None:
    """A commit retried while the first is still running (a client that timed out, a proxy
    that replays): one succeeds, the other answers 409, and the model's numbers keep no gap.
    Both commits are held at the model's row until both have checked the upload is pending
    (it used to be: the second then numbered the same version again, one past the first)."""
    with fresh_database(_services().database_url, prefix="zoo_twice") as url:
        settings = Settings(
            _env_file=None, data_dir=tmp_path, database_url=url, storage="filesystem"
        )
        migrate.upgrade(settings)
        engine = make_engine(settings)
        factory = make_sessionmaker(engine)
        with factory() as s:
            _, token = create_token(s, name="admin", scopes=["admin"])
            s.commit()
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with (
                live_server(create_app(settings)) as base,
                httpx.Client(base_url=f"{base}/api/v1", headers=auth, timeout=30) as http,
            ):
                ns = unique_namespace()
                create_model(http, ns, name="m")
                files = {"model.onnx": linear_model(0.5, seed=1)}
                publish(http, ns, "m", files)
                # The same bytes again: every blob is stored, so the commit verifies nothing
                # and goes straight to numbering (the narrowest window there is).
                opened = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
                assert opened.status_code == 201, opened.text
                upload_id = opened.json()["upload_id"]
                with factory() as s:
                    model_id = s.scalars(select(Model.id).where(Model.name == "m")).one()

                def commit() -> httpx.Response:
                    return httpx.post(
                        f"{base}/api/v1/uploads/{upload_id}/commit", headers=auth, timeout=20
                    )

                with (
                    psycopg.connect(_conninfo(url)) as hold,
                    ThreadPoolExecutor(max_workers=2) as pool,
                ):
                    hold.execute("SELECT 1 FROM models WHERE id = %s FOR UPDATE", (model_id,))
                    first = pool.submit(commit)
                    _wait_for_lock_waiters(url, 1)
                    second = pool.submit(commit)
                    time.sleep(1.0)  # it is past its pending check, waiting on a lock too
                    hold.commit()
                    answers = sorted(r.status_code for r in (first.result(25), second.result(25)))
                listed = http.get(f"/models/{ns}/m/versions").json()
                model = http.get(f"/models/{ns}/m").json()
        finally:
            engine.dispose()
    numbers = sorted(v["number"] for v in listed)
    assert (answers, numbers, model["latest_version"]) == ([200, 409], [1, 2], 2)
