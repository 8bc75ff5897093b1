"""What the ``zoo`` entry point imports: a command loads its own module and what it uses, not
every other command's (start-up is part of `zoo download`'s time against curl)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.client_helpers import Published
from support.hub import Hub

ZOO = str(Path(sys.executable).parent / "zoo")

# Run the entry point as the console script does, then list the modules it loaded.
MODULES_AFTER_MAIN = """
import gc, json, sys
from zoo.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    if e.code:
        raise
# main() exempts what it leaves from the collections at exit (they cost ~50 ms).
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
print(json.dumps(sorted(sys.modules)))
"""

# Modules `zoo download` has no use for: other commands, the analysis code, the server
# package, rich (only for progress bars on a terminal), and what httpx's own CLI would load.
NOT_FOR_DOWNLOAD = {
    "zoo.cli.analyze",
    "zoo.cli.benchmark",
    "zoo.cli.cache",
    "zoo.cli.demo",
    "zoo.cli.search",
    "zoo.cli.verify",
    "zoo.analysis",
    "zoo.runtime",
    "app",
    "numpy",
    "rich",
    "click",
    "pygments",
    "pydantic",  # typer 0.29 validates options with it (~70 ms); pyproject pins typer below
}


def loaded_by(args: list[str], env: dict[str, str]) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-c", MODULES_AFTER_MAIN, *args], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.splitlines()[-1]))


def test_zoo_download_loads_only_what_it_needs(
    hub: Hub, published: Published, tmp_path: Path
) -> None:
    env = {**os.environ, "ZOO_CACHE": str(tmp_path / "c")}
    args = ["--endpoint", hub.url, "download", published.stub, "--quiet"]
    modules = loaded_by(args, env)
    assert {"zoo.cli.download", "httpx"} <= modules  # it did run, over HTTP
    assert modules & NOT_FOR_DOWNLOAD == set()
    snapshot = tmp_path / "c" / "snapshots" / published.namespace / published.version.name / "1"
    assert (snapshot / "model.onnx").is_file()


def test_help_and_errors_still_list_every_command(tmp_path: Path) -> None:
    env = {**os.environ, "ZOO_CACHE": str(tmp_path / "c"), "COLUMNS": "200"}
    r = subprocess.run([ZOO, "--help"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("search", "download", "publish", "cache", "analyze", "verify", "demo", "serve"):
        assert f" {name} " in r.stdout, name
    r = subprocess.run([ZOO, "downlod", "x"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "download" in r.stderr  # typer's "did you mean"
    # Global options before the command are skipped when finding it (both spellings).
    r = subprocess.run(
        [ZOO, "--endpoint=http://127.0.0.1:9", "--offline", "download", "zoo:a/b@1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "offline" in r.stderr
