"""Client benchmarks against a real hub (uvicorn in a subprocess, filesystem backend).

1. ``zoo download`` of a ~500 MB version, against ``curl`` fetching the same file URL into a
   file on the same disk, interleaved in the same run: the ratio of throughputs (goal >= 0.8;
   ours includes sha256 verification, curl's does not). Two numbers for ours: the library call
   (``ZooClient.download``) and the whole ``zoo download`` command (interpreter start included),
   and what the command costs before any byte moves: ``zoo download`` of a version already in
   the cache (start-up, imports, exit; no request is sent).
2. A fully cached pinned stub in a fresh process: ``Model(stub).onnx_model`` (goal < 50 ms),
   with ZOO_ENDPOINT on a port where nothing listens, so any request would fail the run.

The machine is shared: the load average before and after is printed, and a run under load
(above the number of cores) says so; compare ratios from the same run only.

    .venv/bin/python bench/client.py [--size-mb 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import zoo
from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.seed import build_seed_model
from app.tokens.service import create_token
from zoo import ZooClient, ZooConfig

ROOT = Path(__file__).resolve().parent.parent
ZOO = str(Path(sys.executable).parent / "zoo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hub_process(data_dir: Path) -> Iterator[str]:
    """uvicorn serving the hub (filesystem backend) in its own process; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {**os.environ, "ZOO_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("hub did not start")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def make_model_folder(folder: Path, size: int) -> None:
    """The seed model's small files plus ``training/weights.bin`` of ``size`` random bytes."""
    for f in build_seed_model():
        (folder / f.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / f.path).write_bytes(f.data)
    (folder / "training").mkdir(exist_ok=True)
    block = os.urandom(1 << 20)
    with (folder / "training/weights.bin").open("wb") as out:
        left = size
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
            block = block[1:] + block[:1]  # no two MiB alike (no dedup or compression luck)


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def curl_run(url: str, target: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of curl fetching ``url`` into a file."""
    c0, start = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", str(target), url], check=True)
    elapsed, used = time.perf_counter() - start, cpu(resource.RUSAGE_CHILDREN) - c0
    target.unlink()
    return elapsed, used


def library_run(url: str, stub: str, cache: Path) -> tuple[float, float]:
    """(wall, CPU) of ZooClient.download in this process (idle otherwise)."""
    c0, start = cpu(resource.RUSAGE_SELF), time.perf_counter()
    with ZooClient(config=ZooConfig(endpoint=url, cache_dir=cache)) as c:
        c.download(stub)
    elapsed, used = time.perf_counter() - start, cpu(resource.RUSAGE_SELF) - c0
    shutil.rmtree(cache)
    return elapsed, used


def command_run(url: str, stub: str, cache: Path) -> tuple[float, float]:
    """(wall, CPU) of the `zoo download` command, interpreter start included."""
    env = {**os.environ, "ZOO_ENDPOINT": url, "ZOO_CACHE": str(cache)}
    c0, start = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([ZOO, "download", stub, "--quiet"], env=env, check=True, capture_output=True)
    elapsed, used = time.perf_counter() - start, cpu(resource.RUSAGE_CHILDREN) - c0
    shutil.rmtree(cache)
    return elapsed, used


OPEN_CACHED = """
import json, sys, time
t0 = time.perf_counter()
import zoo
t1 = time.perf_counter()
path = zoo.Model(sys.argv[1]).onnx_model
t2 = time.perf_counter()
assert path.is_file()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "open_ms": (t2 - t1) * 1e3}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    # What `pip install` does to an installed package: byte-compile it. A source checkout under
    # PYTHONDONTWRITEBYTECODE=1 (set on these machines) keeps no .pyc of an edited module, and
    # every `zoo` process would compile those afresh: a cost no installed copy pays.
    compileall.compile_dir(Path(zoo.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="zoo-client-bench-") as tmp_s:
        tmp = Path(tmp_s)
        settings = Settings(data_dir=tmp / "hub", _env_file=None)
        migrate.upgrade(settings)
        engine = make_engine(settings)
        with make_sessionmaker(engine)() as s:
            _, token = create_token(s, name="bench", scopes=["admin"])
            s.commit()
        engine.dispose()
        make_model_folder(tmp / "model", size)
        with hub_process(tmp / "hub") as url:
            writer = ZooClient(config=ZooConfig(endpoint=url, token=token, cache_dir=tmp / "w"))
            start = time.perf_counter()
            version = writer.publish(tmp / "model", "zoo:bench/big")
            publish_s = time.perf_counter() - start
            writer.close()
            total = version.total_size
            print(
                f"[publish] {version.stub}: {total / 1e6:.0f} MB in {publish_s:.1f} s "
                f"({total / 1e6 / publish_s:.0f} MB/s, hashing included)"
            )
            big = next(f for f in version.files if f.path == "training/weights.bin")
            runs: dict[str, list[tuple[float, float]]] = {"curl": [], "library": [], "command": []}
            contenders = {
                "curl": lambda: curl_run(big.url, tmp / "curl.bin"),
                "library": lambda: library_run(url, version.stub, tmp / "lib-cache"),
                "command": lambda: command_run(url, version.stub, tmp / "cmd-cache"),
            }
            names = list(contenders)
            load_before = os.getloadavg()[0]
            for i in range(args.repeats):
                # Interleaved, and the order rotates: each sees the same machine load and the
                # same share of "runs right after another 500 MB write".
                for name in names[i % 3 :] + names[: i % 3]:
                    runs[name].append(contenders[name]())
            c, lb, cm = (statistics.median(w for w, _ in runs[n]) for n in names)
            cpu_c, cpu_l, cpu_m = (statistics.median(u for _, u in runs[n]) for n in names)
            # Throughputs over the same bytes: curl fetches the big file alone, we fetch the
            # whole version (a few KB more), so the ratio slightly favours curl.
            print(
                f"[download] curl {big.size / c / 1e6:.0f} MB/s; ZooClient.download "
                f"{total / lb / 1e6:.0f} MB/s (ratio {(total / lb) / (big.size / c):.2f}); "
                f"`zoo download` {total / cm / 1e6:.0f} MB/s (ratio "
                f"{(total / cm) / (big.size / c):.2f}); median of {args.repeats}, goal >= 0.8"
            )
            print(
                f"[cpu] seconds of CPU per download (user+sys, median): curl {cpu_c:.2f}, "
                f"ZooClient.download {cpu_l:.2f}, `zoo download` {cpu_m:.2f} (ours include "
                "sha256, which curl does not compute, and the command its start-up)"
            )
            for n in names:
                print(f"      {n:8s} wall s: " + " ".join(f"{w:.2f}" for w, _ in runs[n]))
            load_after, cores = os.getloadavg()[0], os.cpu_count() or 1
            busy = max(load_before, load_after) > cores
            print(
                f"[load] 1-minute load average {load_before:.1f} before, {load_after:.1f} after, "
                f"on {cores} cores"
                + (": a busy machine, the ratios are noisy; run again" if busy else "")
            )
            # Fill a cache for the cold-open measurement, then take the hub away.
            cache = tmp / "cached"
            with ZooClient(config=ZooConfig(endpoint=url, cache_dir=cache)) as c2:
                c2.download(version.stub, include=["model.onnx"])
        env = {
            **os.environ,
            "ZOO_CACHE": str(cache),
            "ZOO_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        }
        env.pop("ZOO_OFFLINE", None)
        opens: list[dict[str, float]] = []
        for _ in range(5):
            out = subprocess.run(
                [sys.executable, "-c", OPEN_CACHED, version.stub],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            opens.append(json.loads(out))
        open_ms = statistics.median(r["open_ms"] for r in opens)
        import_ms = statistics.median(r["import_ms"] for r in opens)
        print(
            f"[cached] Model('{version.stub}').onnx_model in a fresh process: {open_ms:.1f} ms "
            f"(goal < 50 ms), zero requests (the endpoint is a closed port); `import zoo` "
            f"{import_ms:.0f} ms before it; median of {len(opens)}"
        )
        # What `zoo download` costs before any byte moves: the same command on a version that
        # is already cached (a request would fail: the endpoint is a closed port).
        starts: list[float] = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(
                [ZOO, "download", version.stub, "--include", "model.onnx", "--quiet"],
                env=env,
                check=True,
                capture_output=True,
            )
            starts.append(time.perf_counter() - start)
        print(
            f"[start-up] `zoo download` of a cached version (interpreter, imports, exit): "
            f"{statistics.median(starts) * 1e3:.0f} ms, median of {len(starts)}"
        )


if __name__ == "__main__":
    main()
