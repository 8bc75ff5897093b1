"""A misbehaving HTTP proxy on loopback, in front of a live hub, for the client's tests.

Every request is forwarded to the hub; redirects to another origin (S3 presigned URLs) are
rewritten to come back through the proxy (``/__storage__/<quoted url>``), so faults hit the
bytes on both storage backends. Faults are queued and each fires a given number of times:

- ``drop``: send the headers and ``after`` bytes of the body, then close the connection;
- ``corrupt``: flip the byte at offset ``after`` of the body;
- ``ignore_range``: forward without the Range header (the client gets 200 where it asked 206);
- ``status``: answer ``status`` (e.g. 429, 503) with ``Retry-After`` without asking the hub;
- ``slow``: wait ``delay`` seconds before reading the request body (an upload stalls
  mid-transfer) and answering; with ``rate``, trickle the response body at ``rate`` bytes/s;
- ``wrong_length``: announce ``Content-Length`` ``extra`` bytes off (``extra > 0``: more than is
  sent; ``extra < 0``: fewer), send the real body, then close the connection;
- ``stall``: send the headers and ``after`` bytes of the body, then send nothing for ``delay``
  seconds (the connection stays open);
- ``hangup``: read the request, then close the connection without answering;
- ``lose_response``: forward the request (the hub does the work), then close the connection
  without relaying the answer.

``Fault.method`` restricts a fault to one HTTP method; ``Fault.fired`` is set when it fires,
so a test can act (kill a process) at that moment. Upload URLs that the hub answers a new
version with are rewritten to come through the proxy too (presigned PUTs on S3), so faults
hit uploads on both backends. ``requests`` records (method, path, headers) of everything the
proxy saw.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import httpx

STORAGE_PREFIX = "/__storage__/"
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-connection",
    "expect",  # the proxy answered any 100-continue itself
}


@dataclass
class Fault:
    """One fault: what (kind), where (``match`` is a substring of the path), how many times."""

    kind: str
    match: str = "/files/"
    after: int = 0
    status: int = 503
    retry_after: str | None = None
    times: int = 1
    method: str | None = None
    delay: float = 0.0
    rate: int = 0
    extra: int = 0
    fired: threading.Event = field(default_factory=threading.Event)


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
    # Set on shutdown: a ``slow`` fault stops waiting, so no handler outlives the test.
    closing: threading.Event = field(default_factory=threading.Event)

    def add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take(self, kind: str, path: str, method: str | None = None) -> Fault | None:
        """The first pending fault of ``kind`` that matches ``path`` (and ``method``), consumed
        once; it is marked fired."""
        with self.lock:
            for f in self.faults:
                if f.kind != kind or f.match not in path or f.times <= 0:
                    continue
                if f.method is not None and method is not None and f.method != method:
                    continue
                f.times -= 1
                f.fired.set()
                return f
        return None

    def _proxied(self, url: str) -> str:
        if url.startswith((self.url, self.upstream)):
            return url
        return f"{self.url}{STORAGE_PREFIX}{quote(url, safe='')}"

    def rewrite_upload_urls(self, payload: bytes) -> bytes:
        """An opened upload's body with every store URL (presigned PUTs and parts) pointing
        through the proxy."""
        body: Any = json.loads(payload)
        for blob in body.get("blobs", []):
            for holder in [blob, *(blob.get("parts") or [])]:
                if holder.get("url"):
                    holder["url"] = self._proxied(holder["url"])
        return json.dumps(body).encode()

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
            method = self.command
            slow = proxy.take("slow", self.path, method)
            if slow is not None and slow.delay and proxy.closing.wait(slow.delay):
                self.close_connection = True
                return
            length = int(headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                # The client went away mid-upload: forward nothing (a real server sees the same).
                self.close_connection = True
                return
            if proxy.take("hangup", self.path, method) is not None:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            status_fault = proxy.take("status", self.path, method)
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
            try:
                upstream = http.send(request, stream=True)
            except httpx.TransportError:
                # The upstream is down (a killed store): the client sees a dropped connection.
                self.close_connection = True
                return
            if proxy.take("lose_response", self.path, method) is not None:
                upstream.read()
                upstream.close()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            try:
                self._relay(upstream, slow)
            except (httpx.TransportError, OSError):
                self.close_connection = True  # upstream died mid-body, or the client left
            finally:
                upstream.close()

        def _relay(self, upstream: httpx.Response, slow: Fault | None) -> None:
            status = upstream.status_code
            if self.command == "POST" and self.path.endswith("/versions") and status == 201:
                self._send_rewritten(upstream)
                return
            if "content-length" not in upstream.headers and self.command != "HEAD":
                # A chunked answer (S3 error bodies): relay it with a length, as the chunked
                # framing itself is not passed on.
                self._send_buffered(upstream)
                return
            is_bytes = status in (200, 206) and (
                "/files/" in self.path or self.path.startswith(STORAGE_PREFIX)
            )
            wrong = proxy.take("wrong_length", self.path, "GET") if is_bytes else None
            self.send_response(status)
            for k, v in upstream.headers.multi_items():
                if k.lower() in _HOP or k.lower() == "date" or k.lower() == "server":
                    continue
                if k.lower() == "content-length" and wrong is not None:
                    v = str(max(0, int(v) + wrong.extra))
                if k.lower() == "location" and status in (301, 302, 303, 307, 308):
                    loc = httpx.URL(v)
                    if loc.host and not v.startswith(proxy.upstream):
                        v = f"{proxy.url}{STORAGE_PREFIX}{quote(v, safe='')}"
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            drop = proxy.take("drop", self.path) if is_bytes else None
            corrupt = proxy.take("corrupt", self.path) if is_bytes else None
            stall = proxy.take("stall", self.path) if is_bytes else None
            sent = 0
            step = 64 * 1024
            if slow is not None and slow.rate:
                step = max(1, slow.rate // 10)
            for chunk in upstream.iter_raw(step):
                if slow is not None and slow.rate and proxy.closing.wait(len(chunk) / slow.rate):
                    break
                if corrupt is not None and sent <= corrupt.after < sent + len(chunk):
                    i = corrupt.after - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if stall is not None and sent + len(chunk) > stall.after:
                    self.wfile.write(chunk[: stall.after - sent])
                    self.wfile.flush()
                    chunk, sent = chunk[stall.after - sent :], stall.after
                    if proxy.closing.wait(stall.delay):
                        break
                    stall = None
                if drop is not None and sent + len(chunk) > drop.after:
                    self.wfile.write(chunk[: drop.after - sent])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
            if wrong is not None:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def _send_buffered(self, upstream: httpx.Response) -> None:
            payload = b"".join(upstream.iter_raw())
            self.send_response(upstream.status_code)
            for k, v in upstream.headers.multi_items():
                if k.lower() not in _HOP and k.lower() not in ("date", "server"):
                    self.send_header(k, v)
            if upstream.status_code not in (204, 304):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _send_rewritten(self, upstream: httpx.Response) -> None:
            payload = proxy.rewrite_upload_urls(upstream.read())
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

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
            proxy.closing.set()
            server.shutdown()
            server.server_close()
