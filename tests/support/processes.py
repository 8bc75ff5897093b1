"""Real processes for the fault tests: a hub under ``zoo serve``, a private PostgreSQL cluster,
a second Swift proxy, a small tmpfs. Each can be killed or restarted by the test; every
context manager stops what it started, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.tokens.service import create_token
from support.live import free_port

BIN = Path(sys.executable).parent
ZOO = str(BIN / "zoo")


def is_root() -> bool:
    """Whether the tests run as root (mounting, running PostgreSQL as its user)."""
    return os.geteuid() == 0


def wait_until(what: str, ready: object, timeout: float = 30.0) -> None:
    """Poll ``ready()`` until it is true; raise naming ``what`` after ``timeout`` seconds."""
    assert callable(ready)
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready after {timeout:.0f} s")
        time.sleep(0.05)


def answers(url: str, status: int = 200) -> bool:
    """Whether GET ``url`` answers ``status`` right now."""
    try:
        return httpx.get(url, timeout=1).status_code == status
    except httpx.TransportError:
        return False


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL ``process`` (by its pid, nothing else) and reap it."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


# -- the hub as a process ------------------------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``ZOO_*`` variables that make a subprocess read the same settings."""
    env = {
        "ZOO_DATA_DIR": str(settings.data_dir),
        "ZOO_STORAGE": settings.storage,
        "ZOO_LOG_LEVEL": "warning",
        "ZOO_DATABASE_URL": settings.resolved_database_url,
    }
    if settings.storage_root is not None:
        env["ZOO_STORAGE_ROOT"] = str(settings.storage_root)
    if settings.storage == "s3":
        secret = settings.s3_secret_access_key
        env.update(
            ZOO_S3_BUCKET=settings.s3_bucket,
            ZOO_S3_ENDPOINT_URL=settings.s3_endpoint_url or "",
            ZOO_S3_REGION=settings.s3_region,
            ZOO_S3_ACCESS_KEY_ID=settings.s3_access_key_id or "",
            ZOO_S3_SECRET_ACCESS_KEY=secret.get_secret_value() if secret else "",
            ZOO_MULTIPART_THRESHOLD_BYTES=str(settings.multipart_threshold_bytes),
            ZOO_MULTIPART_PART_BYTES=str(settings.multipart_part_bytes),
        )
        if settings.s3_public_endpoint_url:
            env["ZOO_S3_PUBLIC_ENDPOINT_URL"] = settings.s3_public_endpoint_url
    return env


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``ZOO_*`` or ``AWS_*`` variable, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "AWS_"))}
    return {**base, **extra}


@dataclass
class HubProcess:
    """A hub served by ``zoo serve`` in a process of its own; ``admin_token`` mints nothing."""

    settings: Settings
    admin_token: str
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="zoo-hub-")[1]))

    @property
    def env(self) -> dict[str, str]:
        return clean_env(settings_env(self.settings))

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [ZOO, "serve", "--port", str(port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(f"the hub on {self.url}", self._up, timeout=60)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; its log:\n{self.output()[-3000:]}") from None

    def _up(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the hub exited: {self.log.read_text()[-3000:]}")
        return answers(f"{self.url}/healthz")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill(self.process)

    def output(self) -> str:
        """What the hub logged (for assertion messages)."""
        return self.log.read_text(errors="replace")

    def admin(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``zoo admin ARGS`` on this hub's database and store."""
        return zoo_admin(self.settings, *args, timeout=timeout)


def zoo_admin(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``zoo admin ARGS`` command on the database and store of ``settings``."""
    return subprocess.run(
        [ZOO, "admin", *args],
        env=clean_env(settings_env(settings)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def hub_process(settings: Settings) -> Iterator[HubProcess]:
    """Migrate, mint an admin token, serve ``settings`` with ``zoo serve``; stop afterwards."""
    migrate.upgrade(settings)
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as s:
            _, secret = create_token(s, name="fault-admin", scopes=["admin"])
            s.commit()
    finally:
        engine.dispose()
    hub = HubProcess(settings, secret)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        hub.log.unlink(missing_ok=True)


# -- a private PostgreSQL cluster ------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent)
    return found[-1].parent if found else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of this test alone, on a free port, trust auth, user postgres."""

    home: Path
    bin: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if is_root():
            # PostgreSQL refuses to run as root: run it as its own user, as
            # scripts/services/start-postgres.sh does.
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.home / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "-N",
        )

    def _options(self) -> str:
        # synchronous_commit stays on: an immediate stop (a crash) must not lose a commit the
        # server acknowledged. fsync may be off: the machine itself does not crash here.
        return (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )

    def start(self) -> None:
        data, log = str(self.home / "data"), str(self.home / "log")
        self._run("pg_ctl", "-D", data, "-l", log, "-w", "-o", self._options(), "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.home / "data"), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop (``fast``: roll back open transactions; ``immediate``: like a crash), start."""
        data, log = str(self.home / "data"), str(self.home / "log")
        self._run(
            "pg_ctl", "-D", data, "-l", log, "-m", mode, "-w", "-o", self._options(), "restart"
        )


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster in a temporary directory; stopped and removed afterwards."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server installed (apt-get install postgresql)")
    home = Path(tempfile.mkdtemp(prefix="zoo-pg-"))
    if is_root():
        shutil.chown(home, "postgres", "postgres")
    pg = PrivatePostgres(home, binaries, free_port())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pg.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)


# -- a second Swift proxy ---------------------------------------------------------------------


def swift_home() -> Path:
    """Where scripts/services/start-swift-s3.sh put Swift's configuration."""
    return Path(os.environ.get("SWIFT_HOME") or "/tmp/swift-s3")


@dataclass
class SwiftProxy:
    """A ``swift-proxy-server`` of this test alone, on the running Swift's storage nodes."""

    conf: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["swift-proxy-server", str(self.conf), "-v"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(f"swift proxy on port {self.port}", self._up)

    def _up(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"swift proxy exited: {self.log.read_text()[-2000:]}")
        return answers(f"{self.url}/healthcheck")

    def kill(self) -> None:
        """SIGKILL: the store dies mid-request, as in a crash."""
        kill(self.process)


@contextmanager
def second_swift_proxy(tmp: Path) -> Iterator[SwiftProxy]:
    """Start another proxy from a copy of the running one's config, on a free port."""
    original = swift_home() / "etc" / "proxy-server.conf"
    if not original.is_file():
        raise RuntimeError(
            f"no Swift proxy config at {original}: run scripts/services/start.sh, or set "
            "SWIFT_HOME to where it put Swift"
        )
    port = free_port()
    lines = [
        f"bind_port = {port}" if line.startswith("bind_port") else line
        for line in original.read_text().splitlines()
    ]
    conf = tmp / "proxy-server.conf"
    conf.write_text("\n".join(lines) + "\n")
    proxy = SwiftProxy(conf, port, tmp / "swift-proxy.log")
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.kill()


# -- a small tmpfs ------------------------------------------------------------------------------


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (e.g. ``"8m"``) at ``path``; unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
