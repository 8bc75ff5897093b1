"""Helpers for the client tests: recording transports, test configs, published models."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.seed import build_seed_model
from support.hub import Hub, unique_namespace
from zoo import VersionInfo, ZooClient, ZooConfig


@dataclass
class Recorder(httpx.BaseTransport):
    """An httpx transport that records every request and forwards it (or forbids any)."""

    forbid: bool = False
    seen: list[httpx.Request] = field(default_factory=list)
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append(request)
        if self.forbid:
            raise AssertionError(f"no request was expected, got {request.method} {request.url}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def config_for(endpoint: str, cache: Path, token: str | None = None) -> ZooConfig:
    """Settings for a test: fast backoff, short timeouts, no environment."""
    return ZooConfig(
        endpoint=endpoint.rstrip("/"),
        token=token,
        cache_dir=cache,
        backoff_base=0.01,
        connect_timeout=5,
        read_timeout=30,
        lock_timeout=60,
    )


MakeClient = Callable[..., ZooClient]


def model_folder(root: Path, extra: dict[str, bytes] | None = None, seed: int = 0) -> Path:
    """The seed model (real ONNX, card, recipe, sample npz) written as a folder."""
    folder = root / f"model-{seed}"
    files = {f.path: f.data for f in build_seed_model(seed=seed)}
    files.update(extra or {})
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


@dataclass
class Published:
    """A version published for a test."""

    namespace: str
    version: VersionInfo
    folder: Path
    path_stub: str

    @property
    def stub(self) -> str:
        return self.version.stub


def publish_model(
    hub: Hub, client: ZooClient, root: Path, extra: dict[str, bytes] | None = None, seed: int = 0
) -> Published:
    """Publish the seed model under a fresh namespace with a path stub."""
    ns = unique_namespace()
    path_stub = f"zoo:cv/classification/mlp-tiny/onnx/{ns}/synthetic/pruned90-none"
    folder = model_folder(root, extra, seed)
    version = client.publish(folder, path_stub, namespace=ns, message="test")
    return Published(ns, version, folder, path_stub)
