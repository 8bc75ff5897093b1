"""Web catalog latency over real HTTP to uvicorn (a subprocess), at 10,000 models.

The catalog is populated the way ``bench/registry.py`` does it (its ``populate``), plus a
benchmark and an eval result for every version so each row's numbers are really looked up.
Each page is timed against the JSON API's search for the same 50 models, measured in the same
run (the machines are shared and noisy: the ratio is the number to watch). Goal: the catalog
page (50 models, with facet counts) renders in under 50 ms at p50. Facet counts are cached
per process until the next publish; "facets uncached" is the page when that cache misses.

    python bench/web.py                       # SQLite, and PostgreSQL if ZOO_TEST_DATABASE_URL
    python bench/web.py --models 2000 --requests 100
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from registry import ARCHS, DATASETS, hub_process, percentiles, populate  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.orm import BenchmarkResult, EvalResult, Version  # noqa: E402


def add_results(settings: Settings) -> None:
    """A benchmark and a top-1 eval for every version, as publishers attach them."""
    engine = make_engine(settings)
    rng = random.Random(3)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = conn.execute(select(Version.id)).scalars().all()
        conn.execute(
            insert(BenchmarkResult),
            [
                dict(version_id=v, engine="zoo", engine_version="", hardware="bench", cores=2,
                     batch_size=1, scenario="sync", throughput=rng.uniform(50, 2000),
                     measured_by="bench", created_at=now)
                for v in ids
            ],
        )  # fmt: skip
        conn.execute(
            insert(EvalResult),
            [
                dict(version_id=v, dataset="imagenet", split="validation",
                     metric="top1_accuracy", value=rng.uniform(0.6, 0.8), measured_by="bench",
                     created_at=now)
                for v in ids
            ],
        )  # fmt: skip
    engine.dispose()


def timed(http: httpx.Client, requests: int, url: Callable[[int], str]) -> list[float]:
    """Seconds per GET of ``url(i)`` for ``requests`` requests (each must answer 200)."""
    samples = []
    for i in range(requests):
        t0 = time.perf_counter()
        r = http.get(url(i))
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url(i), r.status_code, r.text[:500])
    return samples


def bench(label: str, env: dict[str, str], settings: Settings, n: int, requests: int) -> None:
    t = time.perf_counter()
    populate(settings, n)
    add_results(settings)
    print(f"[{label}] populated {n} models (with results) in {time.perf_counter() - t:.1f}s")
    rng = random.Random(1)
    with hub_process(env) as (url, _pid), httpx.Client(base_url=url, timeout=30) as http:
        first = http.get("/api/v1/models", params={"limit": 50}).json()
        cursor = first["next_cursor"]
        model = first["items"][0]
        for _ in range(30):  # warm up connections, caches and templates
            http.get("/")
            http.get("/api/v1/models?limit=50")
        filters = [
            f"domain={rng.choice(['cv', 'nlp'])}&dataset={rng.choice(DATASETS)}"
            for _ in range(requests)
        ]
        cases: list[tuple[str, Callable[[int], str]]] = [
            ("API search, 50 (baseline)", lambda i: "/api/v1/models?limit=50"),
            ("GET / (50 rows + facets)", lambda i: "/"),
            # A new sparsity bound each time: the facet cache never hits (worst case).
            ("GET / facets uncached", lambda i: f"/?sparsity_max={100 - i / 1000:g}"),
            ("GET / 2 filters", lambda i: f"/?{filters[i]}"),
            ("GET / -downloads", lambda i: "/?sort=-downloads"),
            ("GET / page 2 (cursor)", lambda i: f"/?cursor={cursor}"),
            ("GET / text search", lambda i: f"/?q={rng.choice(ARCHS)}-{i}"),
            ("model page", lambda i: f"/models/{model['namespace']}/{model['name']}"),
            ("compare (200 variants)", lambda i: f"/compare?architecture={ARCHS[i % 7]}"),
        ]
        results = {name: timed(http, requests, make) for name, make in cases}
    base_p50, _ = percentiles(results["API search, 50 (baseline)"])
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        goal = "  (goal p50 < 50 ms)" if name.startswith("GET / (") else ""
        print(
            f"[{label}] {name:28s} n={len(samples)}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  x{p50 / base_p50:4.1f} of the API search{goal}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-web-") as tmp:
        settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
        bench("sqlite", {"ZOO_DATA_DIR": tmp}, settings, args.models, args.requests)
    server = os.environ.get("ZOO_TEST_DATABASE_URL")
    if not server:
        print("[postgresql] skipped: set ZOO_TEST_DATABASE_URL (make services)")
        return
    name = f"zoo_bench_web_{uuid.uuid4().hex[:6]}"
    admin = make_url(server).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(False)
    try:
        with tempfile.TemporaryDirectory(prefix="zoo-bench-web-pg-") as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url, _env_file=None)  # type: ignore[call-arg]
            env = {"ZOO_DATA_DIR": tmp, "ZOO_DATABASE_URL": url}
            bench("postgresql", env, settings, args.models, args.requests)
    finally:
        with psycopg.connect(admin.render_as_string(False), autocommit=True) as c:
            c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
