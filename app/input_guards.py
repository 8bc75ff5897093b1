"""Refuse NUL characters in request input before they reach the database.

PostgreSQL text and JSONB columns cannot hold U+0000: a NUL in a name, a message or a metadata
value would make the database raise and the request answer 500 (SQLite stores it, so the two
configurations would also disagree). No name, message or query of this API has a use for it,
so it is refused at the door, with the place it was found:

- in the URL path: 404 (nothing can exist at such a path);
- in the query string: 422 naming the parameter;
- in a JSON body: 422 naming the field (request bodies subclass :class:`NoNulBody`).

It also holds :class:`StreamedBodyLimit`, which enforces ``max_json_body_bytes`` on bodies sent
without a ``Content-Length`` (chunked), which the header check in ``app.main`` cannot see.

Manifest file paths are exempt from the body check: ``check_manifest`` refuses them with its
own ``INVALID_PATH`` error, which names the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import NotFound, PayloadTooLarge, ValidationFailed, render_error

NUL = "\x00"


def find_nul(value: object, where: str = "") -> str | None:
    """The dotted location of the first string (key or value) holding a NUL, or None.

    >>> find_nul({"meta": {"a": ["x", "y\\x00"]}})
    'meta.a.1'
    """
    if isinstance(value, str):
        return (where or "(the value)") if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and NUL in key:
                return (where + "." if where else "") + repr(key)
            found = find_nul(item, at)
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_nul(item, f"{where}.{i}" if where else str(i))
            if found is not None:
                return found
    return None


class NoNulBody(BaseModel):
    """A request body whose strings (keys and values, at any depth) may not hold NUL."""

    # Top-level fields another check refuses with a more specific error.
    nul_exempt: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        if isinstance(data, dict):
            checked = {k: v for k, v in data.items() if k not in cls.nul_exempt}
            where = find_nul(checked)
            if where is not None:
                raise ValueError(
                    f"{where} holds a NUL character (\\u0000), which no field accepts; remove it"
                )
        return data


class StreamedBodyLimit:
    """ASGI middleware: a body sent without ``Content-Length`` (chunked) over ``limit`` bytes is
    refused with 413.

    Such a body is read here first, up to the limit (bodies outside ``/blobs/`` are small
    JSON), then replayed to the app; one over the limit never reaches it. Bodies with a
    ``Content-Length`` are left to the header check in ``app.main`` (the server enforces the
    framing). Blob uploads stream with their own per-file limit and are left alone.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or "/blobs/" in scope.get("path", "")
            or any(k == b"content-length" for k, _ in scope.get("headers", []))
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                response = render_error(
                    PayloadTooLarge.status,
                    PayloadTooLarge.code,
                    f"request body is over the {self.limit}-byte limit "
                    "(max_json_body_bytes): send a smaller body",
                )
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # waits for the disconnect, as the server's would
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def install_input_guards(app: FastAPI, *, max_body_bytes: int) -> None:
    """Refuse NUL characters in the URL path (404) and the query string (422), and bodies over
    ``max_body_bytes`` however they are sent (413)."""
    app.add_middleware(StreamedBodyLimit, limit=max_body_bytes)

    @app.middleware("http")
    async def refuse_nul_in_url(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.scope.get("path", "")
        if NUL in path:
            shown = path.replace(NUL, "%00")[:300]
            return render_error(
                404,
                NotFound.code,
                f"nothing exists at {shown!r}: it holds a NUL character (%00); remove it",
            )
        query = request.scope.get("query_string", b"").decode("latin-1")
        if "%00" in query or NUL in query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if NUL in key or NUL in value:
                    name = key.replace(NUL, "%00")[:100]
                    return render_error(
                        422,
                        ValidationFailed.code,
                        f"invalid query parameter '{name}': it holds a NUL character (%00); "
                        "remove it",
                        {"problems": [{"loc": ["query", name], "msg": "NUL character"}]},
                    )
        return await call_next(request)
