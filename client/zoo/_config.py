"""Client settings, read once from the environment into one object and passed around.

Nothing else in the package reads ``os.environ``: a :class:`ZooConfig` is built when a
:class:`~zoo.ZooClient` is made (``ZooConfig.from_env()``), and explicit arguments win.

| variable | default | meaning |
| --- | --- | --- |
| ``ZOO_ENDPOINT`` | ``http://127.0.0.1:8000`` | the hub's base URL |
| ``ZOO_TOKEN`` | the token file | API token (``zoo login`` stores one) |
| ``ZOO_TOKEN_PATH`` | ``~/.config/zoo/token`` | where ``zoo login`` keeps the token (mode 0600) |
| ``ZOO_CACHE`` | ``~/.cache/zoo`` | the download cache |
| ``ZOO_OFFLINE`` | ``0`` | ``1``: never touch the network, serve from the cache |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_ENDPOINT", "ZooConfig", "read_token_file", "write_token_file"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class ZooConfig:
    """Everything the client needs to know about its environment.

    >>> cfg = ZooConfig.from_env({"ZOO_ENDPOINT": "https://hub.example/", "ZOO_OFFLINE": "1"})
    >>> (cfg.endpoint, cfg.offline)
    ('https://hub.example', True)
    """

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None
    token_path: Path = Path("~/.config/zoo/token")
    cache_dir: Path = Path("~/.cache/zoo")
    offline: bool = False
    # Never infinite: connect fast, allow slow reads of big files on busy stores.
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # Every body (file or JSON) must average this many bytes/s over each read_timeout window
    # (a trickling server answers inside every read timeout and would never be cut off).
    min_speed: float = 1024.0
    max_retries: int = 5
    backoff_base: float = 0.5
    max_retry_after: float = 60.0  # a longer Retry-After fails at once instead of hanging
    lock_timeout: float = 600.0
    workers: int = 4

    def __post_init__(self) -> None:
        # Accept str paths and a trailing '/' from callers; store one canonical form.
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        object.__setattr__(self, "token_path", Path(self.token_path).expanduser())
        object.__setattr__(self, "endpoint", str(self.endpoint).rstrip("/"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ZooConfig:
        """Settings from ``env`` (default ``os.environ``); keyword arguments that are not None
        win. The token comes from the argument, else ``ZOO_TOKEN``, else the token file."""
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())

        def path(var: str, default: str) -> Path:
            raw = env.get(var) or default
            return Path(raw.replace("~", str(home), 1) if raw.startswith("~") else raw)

        values: dict[str, object] = {
            "endpoint": env.get("ZOO_ENDPOINT") or DEFAULT_ENDPOINT,
            "token_path": path("ZOO_TOKEN_PATH", "~/.config/zoo/token"),
            "cache_dir": path("ZOO_CACHE", "~/.cache/zoo"),
            "offline": (env.get("ZOO_OFFLINE") or "").strip().lower() in _TRUE,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        token = values.get("token") or env.get("ZOO_TOKEN") or None
        if token is None:
            token = read_token_file(Path(str(values["token_path"])))
        values["token"] = token
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> ZooConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def read_token_file(path: Path) -> str | None:
    """The token stored at ``path``, or None if there is none."""
    try:
        text = path.expanduser().read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    return text or None


def write_token_file(path: Path, token: str) -> Path:
    """Store ``token`` at ``path``, readable by the owner only (0600, created that way, so it is
    never briefly world-readable); the write is atomic."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token.strip() + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
