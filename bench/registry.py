"""Registry benchmarks over real HTTP to uvicorn (a subprocess), with same-run baselines.

1. Search (two filters) and resolve latency, p50/p99, with 10,000 models in the catalog, on
   SQLite and (when ZOO_TEST_DATABASE_URL is set) PostgreSQL.
2. Download of a large file through the filesystem backend: throughput as a ratio against
   nginx serving the same file on loopback (both fetched by curl in the same run).
3. Upload of a large file: growth of the server's peak RSS (streamed, never buffered whole).

    python bench/registry.py                  # everything, 1 GiB files
    python bench/registry.py --size-mb 256 --models 2000 --only search
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.orm import Alias, File, Model, Namespace, Version, VersionStatus  # noqa: E402
from app.tokens.service import create_token  # noqa: E402

DOMAINS = {
    "cv": ["classification", "detection", "segmentation"],
    "nlp": ["question_answering", "text_classification", "token_classification"],
}
ARCHS = ["resnet_v1", "mobilenet_v2", "efficientnet", "bert", "distilbert", "yolov5", "vit"]
DATASETS = ["imagenet", "coco", "squad", "sst2", "conll2003", "voc"]
TAGS = ["base-none", "pruned80-none", "pruned90-none", "pruned95-none", "pruned90_quant-none"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hub_process(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """uvicorn serving the hub in its own process; yields (url, pid)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("hub did not start")
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def populate(settings: Settings, n: int) -> None:
    """Insert n models, each with one ready version, straight into a migrated database.

    (Bulk set-up for a benchmark; the hub's own content only arrives through the API.)
    """
    migrate.upgrade(settings)
    engine = make_engine(settings)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ns_ids = [
            conn.execute(
                insert(Namespace).values(name=f"ns{i}", created_at=now).returning(Namespace.id)
            ).scalar_one()
            for i in range(20)
        ]
        models, combos = [], set()
        for i in range(n):
            domain = rng.choice(list(DOMAINS))
            task = rng.choice(DOMAINS[domain])
            arch, data, tag = rng.choice(ARCHS), rng.choice(DATASETS), rng.choice(TAGS)
            sub = str(i)
            path = f"{domain}/{task}/{arch}-{sub}/pytorch/openzoo/{data}/{tag}"
            combos.add(path)
            models.append(
                dict(
                    namespace_id=ns_ids[i % 20],
                    name=f"{arch}-{sub}-{data}-{tag.removesuffix('-none')}",
                    display_name=f"{arch} {sub}",
                    description="benchmark model",
                    license="mit",
                    tags=[],
                    visibility="public",
                    domain=domain,
                    task=task,
                    architecture=arch,
                    sub_architecture=sub,
                    framework="pytorch",
                    repo="openzoo",
                    dataset=data,
                    training_scheme=None,
                    sparse_tag=tag,
                    path_stub=path,
                    base_model_id=None,
                    created_at=now - timedelta(seconds=i),
                    updated_at=now,
                    latest_version=1,
                    sparsity=rng.random(),
                    quantized="quant" in tag,
                    downloads=rng.randint(0, 10_000),
                )
            )
        ids = conn.execute(insert(Model).returning(Model.id), models).scalars().all()
        versions = [
            dict(
                upload_id=str(uuid.uuid4()),
                model_id=mid,
                number=1,
                status=VersionStatus.READY,
                message="",
                created_at=now,
                committed_at=now,
                total_size=100,
                quantized=False,
                meta={},
                multipart={},
                downloads=0,
            )
            for mid in ids
        ]
        vids = conn.execute(insert(Version).returning(Version.id, Version.model_id), versions).all()
        conn.execute(
            insert(File),
            [
                dict(version_id=v, path="model.onnx", file_type="onnx", size=100, sha256="0" * 64)
                for v, _ in vids
            ],
        )
        conn.execute(
            insert(Alias),
            [dict(model_id=m, name="latest", version_id=v, updated_at=now) for v, m in vids],
        )
    engine.dispose()


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2] * 1000, s[min(len(s) - 1, int(len(s) * 0.99))] * 1000


def bench_search(
    label: str, env: dict[str, str], settings: Settings, n: int, requests: int
) -> None:
    t = time.perf_counter()
    populate(settings, n)
    print(f"[{label}] populated {n} models in {time.perf_counter() - t:.1f}s")
    rng = random.Random(1)
    with hub_process(env) as (url, _pid), httpx.Client(base_url=url, timeout=30) as http:
        stubs = [
            m["stub"] for m in http.get("/api/v1/models", params={"limit": 200}).json()["items"]
        ]
        paths = [
            m["path_stub"]
            for m in http.get("/api/v1/models", params={"limit": 200, "sort": "-downloads"}).json()[
                "items"
            ]
        ]
        for _ in range(50):  # warm up connections and caches
            http.get("/api/v1/models", params={"domain": "cv", "dataset": "imagenet", "limit": 20})
        search, resolve = [], []
        for i in range(requests):
            domain = rng.choice(list(DOMAINS))
            params = {
                "domain": domain,
                "dataset": rng.choice(DATASETS),
                "limit": 20,
                "sort": rng.choice(["name", "-downloads", "-sparsity"]),
            }
            t0 = time.perf_counter()
            r = http.get("/api/v1/models", params=params)
            search.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            # Alternate the path form and the namespaced form; every tenth one misses, so the
            # "did you mean" path is measured too.
            stub = paths[i % len(paths)] if i % 2 else stubs[i % len(stubs)]
            if i % 10 == 0:
                stub = stub.replace("-", "_", 1)
            t0 = time.perf_counter()
            r = http.get("/api/v1/resolve", params={"stub": stub})
            resolve.append(time.perf_counter() - t0)
            assert r.status_code == (404 if i % 10 == 0 else 200), r.text
    for name, samples in (("search (2 filters)", search), ("resolve", resolve)):
        p50, p99 = percentiles(samples)
        print(
            f"[{label}] {name:20s} n={len(samples)}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  (goal p50 < 10, p99 < 30)"
        )


def curl_throughput(url: str, size: int) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert int(out[0]) == size, out
    return size / float(out[1])


def make_big_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        written = 0
        while written < size:
            chunk = block[: min(len(block), size - written)]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bench_transfer(size_mb: int, repeats: int) -> None:
    size = size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp_s:
        tmp = Path(tmp_s)
        big = tmp / "big.bin"
        sha = make_big_file(big, size)
        settings = Settings(data_dir=tmp / "hub", _env_file=None)  # type: ignore[call-arg]
        migrate.upgrade(settings)
        engine = make_engine(settings)
        from app.db import make_sessionmaker

        with make_sessionmaker(engine)() as s:
            _, token = create_token(s, name="bench", scopes=["admin"])
            s.commit()
        engine.dispose()
        env = {"ZOO_DATA_DIR": str(tmp / "hub")}
        with hub_process(env) as (url, pid):
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=f"{url}/api/v1", headers=auth, timeout=600) as http:
                http.post("/models", json={"namespace": "bench", "name": "big"}).raise_for_status()
                r = http.post(
                    "/models/bench/big/versions",
                    json={"files": [{"path": "weights.bin", "size": size, "sha256": sha}]},
                )
                r.raise_for_status()
                blob = r.json()["blobs"][0]
                rss_before = rss_kb(pid, "VmRSS")
                hwm_before = rss_kb(pid, "VmHWM")
                t0 = time.perf_counter()
                with big.open("rb") as f:
                    httpx.put(
                        blob["url"],
                        content=iter(lambda: f.read(1 << 20), b""),
                        headers=auth,
                        timeout=600,
                    ).raise_for_status()
                upload_s = time.perf_counter() - t0
                peak_growth = (rss_kb(pid, "VmHWM") - max(rss_before, 0)) / 1024
                http.post(f"/uploads/{r.json()['upload_id']}/commit").raise_for_status()
            print(
                f"[upload] {size_mb} MiB in {upload_s:.1f}s ({size_mb / upload_s:.0f} MiB/s); "
                f"server peak RSS grew by {peak_growth:.1f} MiB (HWM before {hwm_before / 1024:.0f}"
                f" MiB; goal < 100 MiB)"
            )
            file_url = f"{url}/api/v1/models/bench/big/versions/1/files/weights.bin"
            nginx_url = start_nginx(tmp, big)
            try:
                ours, theirs = [], []
                for _ in range(repeats):  # interleaved, so both see the same machine load
                    theirs.append(curl_throughput(nginx_url, size))
                    ours.append(curl_throughput(file_url, size))
            finally:
                stop_nginx(tmp)
        o, n = statistics.median(ours), statistics.median(theirs)
        print(
            f"[download] hub {o / 2**20:.0f} MiB/s, nginx {n / 2**20:.0f} MiB/s, "
            f"ratio {o / n:.2f} (median of {repeats}; goal >= 0.5)"
        )


def start_nginx(tmp: Path, big: Path) -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx not found: apt-get install nginx-light (the download baseline)")
    port = free_port()
    # nginx's workers drop privileges: let them read the file (mkdtemp makes a 0700 folder).
    tmp.chmod(0o755)
    big.chmod(0o644)
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon on; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server {{ listen 127.0.0.1:{port}; root {big.parent}; }} }}
""")
    subprocess.run([nginx, "-c", str(conf), "-p", str(tmp)], check=True)
    time.sleep(0.3)
    return f"http://127.0.0.1:{port}/{big.name}"


def stop_nginx(tmp: Path) -> None:
    pid = (tmp / "nginx.pid").read_text().strip()
    os.kill(int(pid), signal.SIGTERM)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["search", "transfer"])
    args = ap.parse_args()
    if args.only in (None, "search"):
        with tempfile.TemporaryDirectory(prefix="zoo-bench-db-") as tmp:
            settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
            bench_search("sqlite", {"ZOO_DATA_DIR": tmp}, settings, args.models, args.requests)
        server = os.environ.get("ZOO_TEST_DATABASE_URL")
        if server:
            name = f"zoo_bench_{uuid.uuid4().hex[:6]}"
            admin = make_url(server).set(drivername="postgresql", database="postgres")
            with psycopg.connect(admin.render_as_string(False), autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = make_url(server).set(database=name).render_as_string(False)
            try:
                with tempfile.TemporaryDirectory(prefix="zoo-bench-pg-") as tmp:
                    settings = Settings(data_dir=Path(tmp), database_url=url, _env_file=None)  # type: ignore[call-arg]
                    bench_search(
                        "postgresql",
                        {"ZOO_DATA_DIR": tmp, "ZOO_DATABASE_URL": url},
                        settings,
                        args.models,
                        args.requests,
                    )
            finally:
                with psycopg.connect(admin.render_as_string(False), autocommit=True) as c:
                    c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        else:
            print("[postgresql] skipped: set ZOO_TEST_DATABASE_URL (make services)")
    if args.only in (None, "transfer"):
        bench_transfer(args.size_mb, args.repeats)


if __name__ == "__main__":
    main()
