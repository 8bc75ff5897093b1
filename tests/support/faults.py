"""A misbehaving HTTP proxy on loopback, in front of a live hub, for the client's tests.

Every request is forwarded to the hub; redirects to another origin (S3 presigned URLs) are
rewritten to come back through the proxy (``/__storage__/<quoted url>``), so faults hit the
bytes on both storage backends. Faults are queued and each fires a given number of times:

- ``drop``: send the headers and ``after`` bytes of the body, then close the connection;
- ``corrupt``: flip the byte at offset ``after`` of the body;
- ``ignore_range``: forward without the Range header (the client gets 200 where it asked 206);
- ``status``: answer ``status`` (e.g. 429, 503) with ``Retry-After`` without asking the hub.

``requests`` records (method, path, headers) of everything the proxy saw.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import httpx

STORAGE_PREFIX = "/__storage__/"
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    """One fault: what (kind), where (``match`` is a substring of the path), how many times."""

    kind: str
    match: str = "/files/"
    after: int = 0
    status: int = 503
    retry_after: str | None = None
    times: int = 1


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FaultProxy:
    upstream: str
    url: str = ""
    faults: list[Fault] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take(self, kind: str, path: str, byte_response: bool | None = None) -> Fault | None:
        """The first pending fault of ``kind`` that matches ``path``, consumed once."""
        with self.lock:
            for f in self.faults:
                if f.kind == kind and f.match in path and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def bytes_requests(self) -> list[Seen]:
        """GETs of file bytes (hub file URLs and storage URLs)."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and ("/files/" in r.path or r.path.startswith(STORAGE_PREFIX))
        ]


def _handler(proxy: FaultProxy, http: httpx.Client) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            headers = {k: v for k, v in self.headers.items()}
            with proxy.lock:
                lowered = {k.lower(): v for k, v in headers.items()}
                proxy.requests.append(Seen(self.command, self.path, lowered))
            length = int(headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status_fault = proxy.take("status", self.path)
            if status_fault is not None:
                self.send_response(status_fault.status)
                if status_fault.retry_after is not None:
                    self.send_header("Retry-After", status_fault.retry_after)
                payload = b'{"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if self.path.startswith(STORAGE_PREFIX):
                target = unquote(self.path[len(STORAGE_PREFIX) :])
                # The presigned URL is signed for the store's host and is its own credential:
                # pass on neither our Host nor a token (the client sees the proxy as the hub).
                drop_headers = {"host", "authorization"}
                headers = {k: v for k, v in headers.items() if k.lower() not in drop_headers}
            else:
                target = proxy.upstream + self.path
            if proxy.take("ignore_range", self.path) is not None:
                headers = {k: v for k, v in headers.items() if k.lower() != "range"}
            headers = {k: v for k, v in headers.items() if k.lower() not in _HOP}
            request = http.build_request(self.command, target, headers=headers, content=body)
            upstream = http.send(request, stream=True)
            try:
                self._relay(upstream)
            finally:
                upstream.close()

        def _relay(self, upstream: httpx.Response) -> None:
            status = upstream.status_code
            self.send_response(status)
            for k, v in upstream.headers.multi_items():
                if k.lower() in _HOP or k.lower() == "date" or k.lower() == "server":
                    continue
                if k.lower() == "location" and status in (301, 302, 303, 307, 308):
                    loc = httpx.URL(v)
                    if loc.host and not v.startswith(proxy.upstream):
                        v = f"{proxy.url}{STORAGE_PREFIX}{quote(v, safe='')}"
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            is_bytes = status in (200, 206) and (
                "/files/" in self.path or self.path.startswith(STORAGE_PREFIX)
            )
            drop = proxy.take("drop", self.path) if is_bytes else None
            corrupt = proxy.take("corrupt", self.path) if is_bytes else None
            sent = 0
            for chunk in upstream.iter_raw(64 * 1024):
                if corrupt is not None and sent <= corrupt.after < sent + len(chunk):
                    i = corrupt.after - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if drop is not None and sent + len(chunk) > drop.after:
                    self.wfile.write(chunk[: drop.after - sent])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of ``upstream`` on a free loopback port."""
    proxy = FaultProxy(upstream.rstrip("/"))
    with httpx.Client(timeout=60, follow_redirects=False) as http:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy, http))
        server.daemon_threads = True
        proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield proxy
        finally:
            server.shutdown()
            server.server_close()
