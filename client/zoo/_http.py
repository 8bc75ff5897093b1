"""The client's HTTP layer: two httpx clients, retries with backoff, the offline guard.

- ``api`` talks to the hub and carries the token; ``storage`` talks to whatever a presigned
  redirect points at and never carries it (its origin is not the hub's, and a presigned URL
  is its own credential: S3 refuses a request that also has an Authorization header).
- Redirects are followed here, by hand, so each hop picks its client. httpx's own redirect
  handling is not enough: it drops Authorization on a cross-origin hop but keeps it on an
  http->https upgrade of the same host and on any same-origin hop, and a store behind the
  hub's own host name (one reverse proxy for both) is same-origin. So the token goes only to
  the hub's API paths (``<endpoint>/api/...``), never to any other URL.
- Every request passes :meth:`Http.guard` first: in offline mode nothing reaches a socket.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from zoo._config import ZooConfig
from zoo._errors import (
    NetworkError,
    OfflineError,
    RateLimitedError,
    ServerError,
    error_from_response,
)
from zoo._speed import SpeedFloor, TooSlow

__all__ = ["Http", "retry_after"]

USER_AGENT = "openzoo-client/0.1"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
_MAX_REDIRECTS = 5


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _LazyTLS(httpx.BaseTransport):
    """httpx's transport, with its TLS half made on the first https request.

    Loading the CA bundle is most of what making the clients costs (~25 ms, a tenth of
    `zoo download`'s start-up), and a hub and a store on http:// never need it. http://
    requests go through a transport whose TLS context trusts no certificate at all, so nothing
    can ever speak TLS through it unverified; https:// ones through httpx's default context.
    """

    def __init__(self, limits: httpx.Limits, tls_context: Callable[[], ssl.SSLContext]) -> None:
        self._limits = limits
        self._tls_context = tls_context
        trusts_nothing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA
        self._plain = httpx.HTTPTransport(verify=trusts_nothing, limits=limits)
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self._plain.handle_request(request)
        with self._lock:
            if self._tls is None:
                self._tls = httpx.HTTPTransport(verify=self._tls_context(), limits=self._limits)
        return self._tls.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class _FlooredStream(httpx.SyncByteStream):
    """A response body that raises :class:`~zoo._speed.TooSlow` when it trickles."""

    def __init__(self, raw: httpx.SyncByteStream, floor: SpeedFloor) -> None:
        self._raw, self._floor = raw, floor

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._raw:
            self._floor.add(len(chunk))
            yield chunk

    def close(self) -> None:
        self._raw.close()


class Http:
    """The two HTTP clients of a :class:`~zoo.ZooClient`, with its retry policy."""

    def __init__(self, config: ZooConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        headers = {"User-Agent": USER_AGENT}
        api_headers = dict(headers)
        if config.token:
            api_headers["Authorization"] = f"Bearer {config.token}"
        self._hub = httpx.URL(config.endpoint)
        self._api_path = self._hub.path.rstrip("/") + "/api/"
        common: dict[str, Any] = {"timeout": timeout, "limits": limits, "follow_redirects": False}
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()

        def transport_or_ours() -> httpx.BaseTransport:
            return transport if transport is not None else _LazyTLS(limits, self._tls_context)

        self.api = httpx.Client(
            base_url=f"{config.endpoint}/api/v1",
            headers=api_headers,
            transport=transport_or_ours(),
            **common,
        )
        self.storage = httpx.Client(headers=headers, transport=transport_or_ours(), **common)
        self.sleep: Callable[[float], None] = time.sleep  # tests may speed this up

    def _tls_context(self) -> ssl.SSLContext:
        # One context for both clients, made once: loading the CA bundle is the costly part.
        with self._tls_lock:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            return self._tls

    def close(self) -> None:
        self.api.close()
        self.storage.close()

    def guard(self, what: str) -> None:
        """Refuse any network use in offline mode (one place, before every request)."""
        if self.config.offline:
            raise OfflineError(
                f"offline mode (ZOO_OFFLINE=1) and {what} is not in the cache at "
                f"{self.config.cache_dir}: run the same command once online, or unset ZOO_OFFLINE"
            )

    def is_hub(self, url: httpx.URL) -> bool:
        """True when ``url`` is on the hub's API (same scheme, host, port, under /api/): the
        only URLs that get the token."""
        hub = self._hub
        same_origin = (url.scheme, url.host, url.port) == (hub.scheme, hub.host, hub.port)
        return same_origin and url.path.startswith(self._api_path)

    def client_for(self, url: httpx.URL) -> httpx.Client:
        return self.api if self.is_hub(url) else self.storage

    # -- retries -----------------------------------------------------------------------------

    def backoff(self, attempt: int, response: httpx.Response | None = None) -> float:
        """How long to wait before retry number ``attempt`` (0-based); raises when the server
        asks for longer than ``max_retry_after`` (waiting an hour is a hang, not a retry)."""
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            if asked > self.config.max_retry_after:
                err = error_from_response(response) if response is not None else None
                cls = RateLimitedError if response and response.status_code == 429 else ServerError
                raise cls(
                    f"the server at {response.url.host if response else '?'} asks to retry after "
                    f"{asked:.0f} s (over the {self.config.max_retry_after:.0f} s limit); "
                    "try again later",
                    status=response.status_code if response else 0,
                    code=err.code if err else "",
                )
            return asked
        delay: float = min(self.config.backoff_base * 2**attempt, 10.0)
        return delay * (0.5 + random.random() / 2)  # jitter: parallel workers don't sync up

    def request(
        self,
        method: str,
        url: str,
        *,
        retry: bool | None = None,
        content_factory: Callable[[], Any] | None = None,
        authenticated: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request to the hub (``url`` relative to /api/v1, or absolute), retrying
        connection errors, 429 and 5xx; returns a 2xx response or raises the typed error.

        ``retry`` defaults to True for idempotent methods; a 429 is always retried (the server
        did nothing). ``content_factory`` rebuilds a streamed body for each attempt.
        ``authenticated`` forces the client with (True) or without (False) the token; by
        default the URL's origin decides.
        """
        self.guard(f"{method} {url}")
        retry = method.upper() in _IDEMPOTENT if retry is None else retry
        attempt = 0
        while True:
            if content_factory is not None:
                kwargs["content"] = content_factory()
            target = self.api.base_url.join(url) if "://" not in url else httpx.URL(url)
            if authenticated is None:
                client = self.client_for(target)
            else:
                client = self.api if authenticated else self.storage
            try:
                response = client.send(client.build_request(method, target, **kwargs), stream=True)
                try:
                    self._read_body(response)
                except BaseException:
                    response.close()
                    raise
            except (httpx.TransportError, TooSlow) as e:
                # A refused connection is rarely fixed in seconds (a wrong ZOO_ENDPOINT, a hub
                # that is down): two quick retries, not the full backoff for flaky links.
                limit = self.config.max_retries
                if isinstance(e, httpx.ConnectError):
                    limit = min(limit, 2)
                if not retry or attempt >= limit:
                    where = f"{target.host}:{target.port or ''}"
                    if isinstance(e, TooSlow):
                        raise NetworkError(
                            f"the answer from {where} to {method} {target.path} came too slowly "
                            f"({e}); try again, or tell the hub's operator if it repeats"
                        ) from e
                    raise NetworkError(
                        f"cannot reach {where} ({type(e).__name__}: {e}); check ZOO_ENDPOINT "
                        "and your network, or use ZOO_OFFLINE=1"
                    ) from e
                self.sleep(self.backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            retryable = status == 429 or (retry and status in _RETRY_STATUS)
            if retryable and attempt < self.config.max_retries:
                delay = self.backoff(attempt, response)
                response.close()
                self.sleep(delay)
                attempt += 1
                continue
            if status >= 400:
                raise error_from_response(response)
            return response

    def _read_body(self, response: httpx.Response) -> None:
        """Read the body of ``response`` into it, under the speed floor (a JSON answer that
        trickles in inside every read timeout would otherwise keep the caller for ever)."""
        assert isinstance(response.stream, httpx.SyncByteStream)  # a sync client's responses
        floor = SpeedFloor(self.config.min_speed, self.config.read_timeout)
        response.stream = _FlooredStream(response.stream, floor)
        response.read()

    @contextmanager
    def stream_get(self, url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """GET ``url`` streaming, following redirects by hand (the token stays on the hub).

        The caller inspects the status (206, 200, 416, retryable ones) itself.
        """
        self.guard(f"GET {url}")
        target = httpx.URL(url)
        for _ in range(_MAX_REDIRECTS + 1):
            client = self.client_for(target)
            response = client.send(
                client.build_request("GET", target, headers=headers), stream=True
            )
            if not response.is_redirect:
                break
            location = response.headers.get("location", "")
            response.close()
            target = target.join(location)
        else:
            raise NetworkError(f"too many redirects fetching {url}")
        try:
            yield response
        finally:
            response.close()
