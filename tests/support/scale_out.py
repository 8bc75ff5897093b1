"""The scale-out shape under load: two hub processes on one PostgreSQL and one S3 bucket.

:func:`run_scale_out` starts two real ``zoo serve`` processes at the same moment (each migrates
at boot, as replicas do) on a fresh database and a fresh bucket, then drives them with N
concurrent clients of the ``zoo`` library for D seconds, spread round-robin over the two
processes. Each client loops over a mix of operations on ONE shared model:

- ``publish``: a new version (a distinct small ONNX file and card) through ``ZooClient.publish``;
- ``resolve``: ``ZooClient.resolve`` of the model's stub (``latest``);
- ``search``: ``ZooClient.search`` in the model's namespace;
- ``latest``: ``ZooClient.download`` of the bare stub (``latest``), every file verified;
- ``download``: ``ZooClient.download`` of a pinned, already published version.

Every download uses an empty cache, so bytes really cross the wire (the hub's 302, then the
store). During the run, what ``latest`` names must never go back for a client (not below a
version it saw or published itself), and every version it names must download and verify.
Afterwards :func:`check_invariants` checks the whole: version numbers exactly 1..K with K the
number of successful publishes, ``latest`` == K, each version's bytes are the ones its publisher
sent, the hub's download counters equal the downloads that completed, no request got a 5xx,
no upload stayed pending, no server process logged an error.

Used by ``tests/hardening/test_scale_out.py`` and ``bench/scale_out.py`` (standalone).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.orm import Version, VersionStatus
from app.tokens.service import create_token
from support.databases import fresh_database
from support.fixtures import S3Target
from support.live import free_port
from support.onnx_models import linear_model
from support.s3 import remove_bucket
from zoo import ZooClient
from zoo._cache import Cache, hash_file

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ("publish", "resolve", "search", "latest", "download")
# Relative weights of the mix: reads dominate, and about one client in six is publishing,
# so commits queue on the model's row lock on both processes at once.
DEFAULT_MIX: Mapping[str, int] = {
    "publish": 3,
    "resolve": 3,
    "search": 2,
    "latest": 5,
    "download": 5,
}
PRIMARY = "model.onnx"  # the file whose fetch the hub counts as a download of the version


@dataclass(frozen=True)
class Services:
    """The real PostgreSQL server and S3-compatible store the run uses (from the env)."""

    database_url: str
    s3: S3Target

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Services | None:
        """``ZOO_TEST_DATABASE_URL`` and ``ZOO_TEST_S3_ENDPOINT`` (+ AWS_* keys), or None."""
        env = os.environ if env is None else env
        url, endpoint = env.get("ZOO_TEST_DATABASE_URL"), env.get("ZOO_TEST_S3_ENDPOINT")
        if not url or not endpoint:
            return None
        target = S3Target(
            endpoint,
            env.get("AWS_ACCESS_KEY_ID", ""),
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_DEFAULT_REGION", "us-east-1"),
            False,
        )
        return cls(url, target)


MISSING_SERVICES = (
    "the scale-out run needs a real PostgreSQL and S3 store: set ZOO_TEST_DATABASE_URL and "
    "ZOO_TEST_S3_ENDPOINT (source /tmp/openzoo-services.env after scripts/services/start.sh)"
)


# --- backing services ---------------------------------------------------------------------


def hub_env(database_url: str, s3: S3Target, bucket: str, data_dir: Path) -> dict[str, str]:
    """The environment of a hub process: the parent's minus any ZOO_* setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env.update(
        {
            "ZOO_DATABASE_URL": database_url,
            "ZOO_DATA_DIR": str(data_dir),
            "ZOO_STORAGE": "s3",
            "ZOO_S3_ENDPOINT_URL": s3.endpoint_url,
            "ZOO_S3_BUCKET": bucket,
            "ZOO_S3_REGION": s3.region,
            "ZOO_S3_ACCESS_KEY_ID": s3.access_key_id,
            "ZOO_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
            "ZOO_LOG_LEVEL": "warning",
        }
    )
    return env


@dataclass
class HubProcess:
    """One ``zoo serve`` process: its URL and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_lines(self) -> list[str]:
        """Its output so far (complete once it has exited)."""
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


def failure_lines(lines: list[str]) -> list[str]:
    """The lines of a hub's log that report a failure (tracebacks, ERROR records)."""
    return [line for line in lines if re.search(r"Traceback|ERROR|CRITICAL", line)]


@contextmanager
def hub_processes(env: Mapping[str, str], count: int, logs: Path) -> Iterator[list[HubProcess]]:
    """``count`` ``zoo serve`` processes started at the same moment, each migrating at boot;
    yields once every one answers ``/readyz``, stops them all afterwards."""
    hubs: list[HubProcess] = []
    try:
        for i in range(count):
            port = free_port()
            log = logs / f"hub-{i}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "zoo",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        f"{port}",
                    ],
                    env=dict(env),
                    cwd=logs,  # no stray .env file of the repository is read
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            hubs.append(HubProcess(f"http://127.0.0.1:{port}", proc, log))
        deadline = time.monotonic() + 60
        for hub in hubs:
            while True:
                try:
                    if httpx.get(f"{hub.url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if hub.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"hub {hub.url} did not start (exit {hub.process.poll()}):\n"
                        + hub.log.read_text(errors="replace")[-4000:]
                    )
                time.sleep(0.1)
        yield hubs
    finally:
        for hub in hubs:
            if hub.process.poll() is None:
                hub.process.send_signal(signal.SIGINT)
        for hub in hubs:
            try:
                hub.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                hub.process.kill()
                hub.process.wait(timeout=10)


# --- recording ----------------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies and errors per operation, HTTP statuses per endpoint; thread-safe."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    # endpoint -> seconds until the response headers arrived (where an operation's time goes)
    http_latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_errors: list[str] = field(default_factory=list)
    # version number -> hub-granted GETs of its primary file (what the hub's counter counts)
    counted_fetches: Counter[int] = field(default_factory=Counter)
    # version number -> downloads that completed and verified
    completed: Counter[int] = field(default_factory=Counter)
    # version number -> sha256 of the primary file as the publisher sent it / as downloaded
    published: dict[int, str] = field(default_factory=dict)
    downloaded: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, op: str, seconds: float) -> None:
        with self._lock:
            self.latencies[op].append(seconds)

    def fail(self, op: str, message: str) -> None:
        with self._lock:
            self.errors[op].append(message)

    def response(self, request: httpx.Request, status: int, seconds: float) -> None:
        endpoint = endpoint_of(request)
        with self._lock:
            self.statuses[endpoint, status] += 1
            self.http_latencies[endpoint].append(seconds)
            if status >= 500:
                self.server_errors.append(f"{request.method} {request.url} -> {status}")
            if endpoint == "GET hub file" and status < 400 and _counts(request):
                number = re.search(r"/versions/(\d+)/files/", request.url.path)
                if number and request.url.path.endswith(f"/files/{PRIMARY}"):
                    self.counted_fetches[int(number.group(1))] += 1

    def download_done(self, number: int, primary_sha: str) -> None:
        with self._lock:
            self.completed[number] += 1
            self.downloaded[number].add(primary_sha)

    def publish_done(self, number: int, primary_sha: str) -> None:
        with self._lock:
            if number in self.published:
                self.errors["publish"].append(f"version number {number} was handed out twice")
            self.published[number] = primary_sha

    def known_numbers(self) -> list[int]:
        with self._lock:
            return list(self.published)


def _counts(request: httpx.Request) -> bool:
    rng = request.headers.get("range", "").replace(" ", "")
    return not rng or rng.startswith("bytes=0-")


def endpoint_of(request: httpx.Request) -> str:
    """A request's endpoint class, for the status table."""
    path, method = request.url.path, request.method
    if not path.startswith("/api/"):
        return f"{method} store"
    rules = [
        (r"/files/", "hub file"),
        (r"/uploads/[^/]+/commit$", "commit"),
        (r"/uploads/[^/]+$", "upload"),
        (r"/models/[^/]+/[^/]+/versions$", "versions"),
        (r"/resolve$", "resolve"),
        (r"/models$", "models"),
    ]
    for pattern, name in rules:
        if re.search(pattern, path):
            return f"{method} {name}"
    return f"{method} {path}"


class RecordingTransport(httpx.HTTPTransport):
    """The client's real transport, recording each response's status (the client retries
    5xx on idempotent requests by itself: a retried 500 must still be seen)."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(limits=httpx.Limits(max_connections=16, max_keepalive_connections=8))
        self.recorder = recorder

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        response = super().handle_request(request)
        self.recorder.response(request, response.status_code, time.perf_counter() - start)
        return response


# --- the load -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    """How hard and how long to push."""

    clients: int = 50
    seconds: float = 60.0
    processes: int = 2
    mix: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0


@dataclass
class RunResult:
    """What a run measured and what the hub holds afterwards."""

    config: LoadConfig
    elapsed: float
    recorder: Recorder
    namespace: str
    name: str
    versions: list[int]  # the ready version numbers the hub lists, ascending
    latest: int | None  # what resolving the bare stub answers afterwards
    model_latest: int | None  # the model's latest_version field
    model_downloads: int
    version_downloads: dict[int, int]
    hub_primary_sha: dict[int, str]  # version -> sha256 of its primary file, per the hub
    pending_uploads: int
    server_log_lines: int
    server_log_errors: list[str]
    server_log_warnings: list[str]
    load_before: str
    load_after: str


class _Worker:
    """One client: a ``ZooClient`` on one hub process, looping over the operation mix."""

    def __init__(
        self,
        index: int,
        url: str,
        token: str,
        stub: str,
        work: Path,
        recorder: Recorder,
        config: LoadConfig,
        seeds: Iterator[int],
        seeds_lock: threading.Lock,
    ) -> None:
        self.index, self.stub, self.work, self.recorder = index, stub, work, recorder
        self.rng = random.Random(config.seed * 1000 + index)
        self.ops = [op for op in OPERATIONS if config.mix.get(op, 0) > 0]
        self.weights = [config.mix[op] for op in self.ops]
        self.seeds, self.seeds_lock = seeds, seeds_lock
        self.floor = 0  # the highest version this client has seen or published
        work.mkdir(parents=True)
        self.client = ZooClient(
            url, token, cache_dir=work / "cache", transport=RecordingTransport(recorder)
        )
        self.ns, self.name = stub.removeprefix("zoo:").split("/")

    def run(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                op = self.rng.choices(self.ops, self.weights)[0]
                action: Callable[[], None] = getattr(self, f"_{op}")
                start = time.perf_counter()
                try:
                    action()
                except Exception as e:  # any failure of an operation is a finding, recorded
                    self.recorder.fail(op, f"client {self.index}: {type(e).__name__}: {e}")
                else:
                    self.recorder.ok(op, time.perf_counter() - start)
        finally:
            self.client.close()

    def _see(self, number: int, what: str) -> None:
        assert number >= self.floor, (
            f"{what} named version {number} after this client saw version {self.floor}: "
            "latest went back"
        )
        self.floor = number

    def _publish(self) -> None:
        with self.seeds_lock:
            seed = next(self.seeds)
        folder = self.work / f"publish-{seed}"
        folder.mkdir()
        try:
            onnx = linear_model(0.5, seed=seed)
            (folder / PRIMARY).write_bytes(onnx)
            (folder / "model.md").write_text(f"# load version from seed {seed}\n")
            v = self.client.publish(folder, self.stub, message=f"seed {seed}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        sha = hashlib.sha256(onnx).hexdigest()
        got = {f.path: f.sha256 for f in v.files}
        assert got.get(PRIMARY) == sha, f"version {v.number} lists {got} after publishing {sha}"
        self.recorder.publish_done(v.number, sha)
        self._see(v.number, "publishing")

    def _resolve(self) -> None:
        self._see(self.client.resolve(self.stub).number, "resolve")

    def _search(self) -> None:
        found = [m for m in self.client.search(namespace=self.ns, limit=10) if m.name == self.name]
        assert found, f"search in namespace {self.ns} did not list {self.name}"
        self._see(found[0].latest_version or 0, "search")

    def _latest(self) -> None:
        number = self._download(self.stub)
        self._see(number, "latest")

    def _download(self, stub: str | None = None) -> int:
        if stub is None:
            known = self.recorder.known_numbers()
            # Before the first publish is recorded, the bare stub (latest) stands in.
            stub = f"{self.stub}@{self.rng.choice(known)}" if known else self.stub
        # An empty cache per download: every file crosses the wire and is verified again.
        cache = self.work / f"cache-{secrets.token_hex(4)}"
        self.client.cache = Cache(cache, self.client.config.lock_timeout)
        try:
            folder = self.client.download(stub)  # the snapshot folder is named by the number
            manifest = self.client.cache.read_manifest(self.ns, self.name, int(folder.name))
            assert manifest is not None, f"{stub}: no manifest cached after the download"
            for f in manifest.files:
                digest, size = hash_file(folder / f.path)
                assert (digest, size) == (f.sha256, f.size), (
                    f"{stub}: {f.path} is {size} bytes with sha256 {digest}, the hub lists "
                    f"{f.size} bytes with sha256 {f.sha256}"
                )
            primary = {f.path: f.sha256 for f in manifest.files}[PRIMARY]
            self.recorder.download_done(manifest.number, primary)
            return manifest.number
        finally:
            shutil.rmtree(cache, ignore_errors=True)


def _loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _drop_bucket(s3: S3Target, bucket: str) -> None:
    # Clean-up of a bucket the run made: a failure here (e.g. the hubs never created it) must
    # not hide the run's own error.
    try:
        remove_bucket(s3, bucket)
    except Exception as e:
        print(f"scale-out: could not remove bucket {bucket}: {e}", file=sys.stderr)


def run_scale_out(services: Services, config: LoadConfig | None = None) -> RunResult:
    """Start the hubs on fresh services, run the load, read back what the hub holds.

    Everything the run creates (database, bucket, processes, files) is gone when it returns.
    """
    config = config or LoadConfig()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zoo-scale-")))
        database = stack.enter_context(fresh_database(services.database_url, "zoo_scale"))
        bucket = f"zoo-scale-{secrets.token_hex(5)}"
        stack.callback(_drop_bucket, services.s3, bucket)  # after the hubs stop
        env = hub_env(database, services.s3, bucket, tmp / "data")
        # Registered before the hubs start, so it runs once they have exited (logs complete)
        # and before the temporary folder holding the logs goes.
        started: list[HubProcess] = []
        logs: list[str] = []
        stack.callback(lambda: logs.extend(line for h in started for line in h.log_lines()))
        hubs = stack.enter_context(hub_processes(env, config.processes, tmp))
        started.extend(hubs)
        engine = make_engine(Settings(_env_file=None, database_url=database))
        stack.callback(engine.dispose)
        factory = make_sessionmaker(engine)
        with factory() as s:
            _, token = create_token(s, name="scale-out", scopes=["admin"])
            s.commit()

        ns, name = f"scale{secrets.token_hex(3)}", "shared"
        stub = f"zoo:{ns}/{name}"
        admin = stack.enter_context(
            httpx.Client(
                base_url=f"{hubs[-1].url}/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        )
        admin.post("/models", json={"namespace": ns, "name": name}).raise_for_status()

        recorder = Recorder()
        seeds, seeds_lock = itertools.count(1), threading.Lock()
        # Version 1 before the load, so every read from the first second on has a version to
        # name (it counts as one of the K publishes).
        first = _Worker(
            -1, hubs[0].url, token, stub, tmp / "setup", recorder, config, seeds, seeds_lock
        )
        first._publish()
        first.client.close()
        workers = [
            _Worker(
                i,
                hubs[i % len(hubs)].url,
                token,
                stub,
                tmp / f"client-{i}",
                recorder,
                config,
                seeds,
                seeds_lock,
            )
            for i in range(config.clients)
        ]
        load_before = _loadavg()
        start = time.monotonic()
        deadline = start + config.seconds
        threads = [
            threading.Thread(target=w.run, args=(deadline,), name=f"zoo-client-{w.index}")
            for w in workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        load_after = _loadavg()

        # What the hub holds now, through the API (the other process than most writes used
        # is irrelevant: both read one database).
        listed = admin.get(f"/models/{ns}/{name}/versions")
        listed.raise_for_status()
        version_downloads = {int(v["number"]): int(v["downloads"]) for v in listed.json()}
        hub_sha: dict[int, str] = {}
        for number in version_downloads:
            body = admin.get(f"/models/{ns}/{name}/versions/{number}").json()
            hub_sha[number] = {f["path"]: f["sha256"] for f in body["files"]}.get(PRIMARY, "")
        model = admin.get(f"/models/{ns}/{name}").json()
        with ZooClient(hubs[0].url, token, cache_dir=tmp / "final-cache") as final:
            latest: int | None = final.resolve(stub).number if version_downloads else None
        with factory() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(Version)
                .where(Version.status == VersionStatus.PENDING)
            )
    return RunResult(
        config=config,
        elapsed=elapsed,
        recorder=recorder,
        namespace=ns,
        name=name,
        versions=sorted(version_downloads),
        latest=latest,
        model_latest=model.get("latest_version"),
        model_downloads=int(model["downloads"]),
        version_downloads=version_downloads,
        hub_primary_sha=hub_sha,
        pending_uploads=int(pending or 0),
        server_log_lines=len(logs),
        server_log_errors=failure_lines(logs),
        server_log_warnings=[line for line in logs if "WARNING" in line],
        load_before=load_before,
        load_after=load_after,
    )


# --- verdict and report -------------------------------------------------------------------


@dataclass(frozen=True)
class Invariant:
    """One property of the run, whether it held, and the evidence."""

    name: str
    held: bool
    detail: str


def check_invariants(result: RunResult) -> list[Invariant]:
    """Every property the scale-out run must have; see the module docstring."""
    rec = result.recorder
    out: list[Invariant] = []

    def check(name: str, held: bool, detail: str) -> None:
        out.append(Invariant(name, held, detail))

    failures = {op: errs for op, errs in rec.errors.items() if errs}
    check(
        "no operation failed",
        not failures,
        "; ".join(f"{op}: {len(e)} x, e.g. {e[0][:300]}" for op, e in failures.items())
        or "0 errors",
    )
    check(
        "no 5xx answer (retried ones included)",
        not rec.server_errors,
        f"{len(rec.server_errors)}: {rec.server_errors[:3]}" if rec.server_errors else "none",
    )
    check(
        "no error in the hub processes' logs",
        not result.server_log_errors,
        "; ".join(result.server_log_errors[:5])
        or f"{result.server_log_lines} lines read, none reports an error",
    )
    overflow = [w for w in result.server_log_warnings if "Connection pool is full" in w]
    check(
        "no connection pool of a hub overflowed (S3 client)",
        not overflow,
        f"{len(overflow)} x: {overflow[0][:200]}" if overflow else "none",
    )
    ran = {op: len(rec.latencies.get(op, [])) for op in OPERATIONS if result.config.mix.get(op)}
    check("every operation of the mix ran", all(ran.values()), str(ran))

    k = len(rec.published)
    expected = list(range(1, k + 1))
    check(
        "publishers got exactly 1..K, K = successful publishes",
        k > 0 and sorted(rec.published) == expected,
        f"K={k}, gaps/extras: {sorted(set(expected) ^ set(rec.published))[:10]}",
    )
    check(
        "the hub lists exactly versions 1..K",
        result.versions == expected,
        f"listed {len(result.versions)} (max {max(result.versions, default=0)}), "
        f"differences: {sorted(set(expected) ^ set(result.versions))[:10]}",
    )
    check(
        "latest == K (resolve and the model's latest_version)",
        result.latest == k and result.model_latest == k,
        f"resolve: {result.latest}, latest_version: {result.model_latest}, K={k}",
    )
    wrong_hub = [n for n, sha in rec.published.items() if result.hub_primary_sha.get(n) != sha]
    wrong_dl = [n for n, shas in rec.downloaded.items() if shas != {rec.published.get(n)}]
    check(
        "each version holds, and every download got, its publisher's bytes",
        not wrong_hub and not wrong_dl,
        f"hub differs for {wrong_hub[:10]}, downloads differ for {wrong_dl[:10]}",
    )
    done = sum(rec.completed.values())
    per_version_ok = all(
        result.version_downloads.get(n, 0) == rec.completed.get(n, 0)
        for n in set(result.version_downloads) | set(rec.completed)
    )
    check(
        "download counters == completed downloads (model and per version)",
        result.model_downloads == done
        and sum(result.version_downloads.values()) == done
        and per_version_ok
        and sum(rec.counted_fetches.values()) == done,
        f"completed {done}, model counter {result.model_downloads}, sum of version counters "
        f"{sum(result.version_downloads.values())}, per-version equal: {per_version_ok}, "
        f"granted primary-file GETs seen {sum(rec.counted_fetches.values())}",
    )
    check("no upload left pending", result.pending_uploads == 0, f"{result.pending_uploads}")
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def format_report(result: RunResult, invariants: list[Invariant] | None = None) -> str:
    """The per-operation table (count, throughput, p50, p99, errors), statuses, invariants."""
    rec, cfg = result.recorder, result.config
    lines = [
        f"scale-out: {cfg.processes} hub processes (zoo serve) on one PostgreSQL + one S3 bucket, "
        f"{cfg.clients} clients for {result.elapsed:.1f} s on loopback",
        f"load average before: {result.load_before}; after: {result.load_after}",
        "",
        f"{'operation':<10} {'count':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}",
    ]
    total = 0
    for op in OPERATIONS:
        samples = sorted(rec.latencies.get(op, []))
        errors = len(rec.errors.get(op, []))
        if not samples and not errors:
            continue
        total += len(samples)
        p50 = statistics.median(samples) if samples else float("nan")
        p99 = statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else p50
        lines.append(
            f"{op:<10} {len(samples):>7} {len(samples) / result.elapsed:>8.2f} "
            f"{_ms(p50):>8} {_ms(p99):>8} {errors:>7}"
        )
    lines.append(f"{'all':<10} {total:>7} {total / result.elapsed:>8.2f}")
    lines.append("")
    # Where the time goes: each HTTP request of the operations above, until its headers came.
    by_endpoint: dict[str, list[str]] = defaultdict(list)
    for (endpoint, status), n in sorted(rec.statuses.items()):
        by_endpoint[endpoint].append(f"{status}x{n}")
    lines.append(f"{'HTTP request':<16} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for endpoint, statuses in by_endpoint.items():
        samples = rec.http_latencies[endpoint]
        p50 = statistics.median(samples)
        p99 = statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else p50
        lines.append(
            f"{endpoint:<16} {len(samples):>7} {_ms(p50):>8} {_ms(p99):>8}  {' '.join(statuses)}"
        )
    lines.append("")
    lines.append(
        f"versions published: {len(rec.published)}; downloads completed: "
        f"{sum(rec.completed.values())}"
    )
    # Warnings are not failures, but show what the hubs complained about under load.
    warnings = Counter(re.sub(r"\d+", "N", w)[:150] for w in result.server_log_warnings)
    for text, n in warnings.most_common(3):
        lines.append(f"hub log warning x{n}: {text}")
    for inv in invariants or []:
        lines.append(f"[{'ok' if inv.held else 'FAILED'}] {inv.name}: {inv.detail}")
    return "\n".join(lines)


def scale_out_config_from_env(env: Mapping[str, str] | None = None) -> LoadConfig:
    """``ZOO_SCALE_OUT_CLIENTS`` / ``ZOO_SCALE_OUT_SECONDS`` override the defaults (50, 60)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for var, key, kind in (
        ("ZOO_SCALE_OUT_CLIENTS", "clients", int),
        ("ZOO_SCALE_OUT_SECONDS", "seconds", float),
    ):
        raw = env.get(var)
        if raw:
            try:
                values[key] = kind(raw)
            except ValueError as e:
                raise ValueError(f"{var}={raw!r} is not a number; unset it or give one") from e
    return LoadConfig(**values)
