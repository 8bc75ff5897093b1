"""One exception tree for every error the API answers with, and the handler that renders it.

    ZooError                      (500 INTERNAL)
    ├── BadRequest                (400 BAD_REQUEST)
    │   ├── InvalidStub           (400 INVALID_STUB)
    │   ├── InvalidPath           (400 INVALID_PATH)
    │   ├── InvalidManifest       (400 INVALID_MANIFEST)
    │   ├── DigestMismatch        (400 DIGEST_MISMATCH)
    │   ├── InvalidOnnx           (400 INVALID_ONNX)
    │   ├── InvalidArchive        (400 INVALID_ARCHIVE)
    │   ├── SparsityMismatch      (400 SPARSITY_MISMATCH)
    │   └── InvalidCursor         (400 INVALID_CURSOR)
    ├── Unauthorized              (401 UNAUTHORIZED)
    ├── Forbidden                 (403 FORBIDDEN)
    ├── NotFound                  (404 NOT_FOUND)
    │   ├── ModelNotFound         (404 MODEL_NOT_FOUND)
    │   ├── VersionNotFound       (404 VERSION_NOT_FOUND)
    │   ├── FileNotFound          (404 FILE_NOT_FOUND)
    │   ├── UploadNotFound        (404 UPLOAD_NOT_FOUND)
    │   └── TokenNotFound         (404 TOKEN_NOT_FOUND)
    ├── Conflict                  (409 CONFLICT)
    │   ├── ModelExists           (409 MODEL_EXISTS)
    │   └── UploadNotPending      (409 UPLOAD_NOT_PENDING)
    ├── PayloadTooLarge           (413 PAYLOAD_TOO_LARGE)
    ├── RangeNotSatisfiable       (416 RANGE_NOT_SATISFIABLE)
    ├── ValidationFailed          (422 VALIDATION_FAILED)
    ├── ServiceUnavailable        (503 SERVICE_UNAVAILABLE)
    └── InsufficientStorage       (507 INSUFFICIENT_STORAGE)

Every error renders as ``{"error": {"code": ..., "message": ..., "details": ...}}``; the codes are
stable and the client maps them to its own exception tree.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ZooError(Exception):
    """Root of the server's errors: a stable code, an HTTP status and a message for the user."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(ZooError):
    """The request is malformed."""

    code, status = "BAD_REQUEST", 400


class InvalidStub(BadRequest):
    """A stub does not follow the grammar."""

    code = "INVALID_STUB"


class InvalidPath(BadRequest):
    """A file path is absolute, escapes its folder or has forbidden characters."""

    code = "INVALID_PATH"


class InvalidManifest(BadRequest):
    """A publish manifest is inconsistent (duplicate paths, bad sizes, bad digests)."""

    code = "INVALID_MANIFEST"


class DigestMismatch(BadRequest):
    """Uploaded bytes do not match the size or sha256 the manifest declared."""

    code = "DIGEST_MISMATCH"


class InvalidOnnx(BadRequest):
    """An .onnx file fails the ONNX checker or is unsafe to load."""

    code = "INVALID_ONNX"


class InvalidArchive(BadRequest):
    """A published tar archive is unreadable or holds a member unsafe to extract."""

    code = "INVALID_ARCHIVE"


class SparsityMismatch(BadRequest):
    """A stub tag or metadata claims a sparsity the weights do not have."""

    code = "SPARSITY_MISMATCH"


class InvalidCursor(BadRequest):
    """A pagination cursor was not produced by this server for this query."""

    code = "INVALID_CURSOR"


class Unauthorized(ZooError):
    """No valid token was presented where one is required."""

    code, status = "UNAUTHORIZED", 401


class Forbidden(ZooError):
    """The token is valid but lacks the scope or namespace for this action."""

    code, status = "FORBIDDEN", 403


class NotFound(ZooError):
    """Nothing (visible to the caller) exists here."""

    code, status = "NOT_FOUND", 404


class ModelNotFound(NotFound):
    """No model (visible to the caller) matches."""

    code = "MODEL_NOT_FOUND"


class VersionNotFound(NotFound):
    """The model has no ready version with this number or alias."""

    code = "VERSION_NOT_FOUND"


class FileNotFound(NotFound):
    """The version has no file at this path."""

    code = "FILE_NOT_FOUND"


class UploadNotFound(NotFound):
    """No pending upload with this id (for this model)."""

    code = "UPLOAD_NOT_FOUND"


class TokenNotFound(NotFound):
    """No token with this id."""

    code = "TOKEN_NOT_FOUND"


class Conflict(ZooError):
    """The request conflicts with the current state."""

    code, status = "CONFLICT", 409


class ModelExists(Conflict):
    """A model with this namespace/name or stub already exists."""

    code = "MODEL_EXISTS"


class UploadNotPending(Conflict):
    """The upload was already committed, aborted or failed."""

    code = "UPLOAD_NOT_PENDING"


class PayloadTooLarge(ZooError):
    """A body or file is over the configured limit."""

    code, status = "PAYLOAD_TOO_LARGE", 413


class RangeNotSatisfiable(ZooError):
    """The Range header does not fit the file."""

    code, status = "RANGE_NOT_SATISFIABLE", 416


class ValidationFailed(ZooError):
    """The request body or parameters do not validate."""

    code, status = "VALIDATION_FAILED", 422


class ServiceUnavailable(ZooError):
    """A backing service (database, object store) is unreachable."""

    code, status = "SERVICE_UNAVAILABLE", 503


class InsufficientStorage(ZooError):
    """The hub's storage is full: nothing of the upload was kept; the operator must free space."""

    code, status = "INSUFFICIENT_STORAGE", 507


class ErrorBody(BaseModel):
    """The JSON shape of every error answer."""

    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """``{"error": {...}}``, declared in OpenAPI for every route."""

    error: ErrorBody


def error_responses(*errors: type[ZooError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping for a route that may raise these errors (shown on /docs)."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(err.status, {"model": ErrorResponse, "description": ""})
        codes = [c for c in entry["description"].split(", ") if c]
        entry["description"] = ", ".join([*codes, err.code])
    return out


def render_error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    416: "RANGE_NOT_SATISFIABLE",
}


def _unparsable_body(exc: StarletteHTTPException) -> str | None:
    """The message for a JSON body FastAPI could not even decode, or None for other errors.

    FastAPI answers a body that is not UTF-8, or nests too deeply for the parser, with a bare
    400 "There was an error parsing the body" (a JSON syntax error is already a 422). Those are
    the same mistake as a syntax error (the body is not JSON), so they get the same status and
    a message that says what is wrong.
    """
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"invalid body: it is not UTF-8 text ({cause.reason} at byte {cause.start}); "
            "send the JSON body encoded as UTF-8"
        )
    if isinstance(cause, RecursionError):
        return "invalid body: its JSON nests too deeply to parse; flatten it"
    return None


def declare_implicit_errors(app: FastAPI) -> None:
    """Declare in OpenAPI the errors every route of a kind can answer, whatever it raises itself.

    - 401 on every route that reads the caller: an expired or revoked token is refused even on
      public reads (a bad token is never treated as anonymous).
    - 413 on every route with a JSON body: the body-size limit refuses bodies over
      ``max_json_body_bytes`` before the route runs.
    - 422 on every route: a NUL character in the query string is refused everywhere
      (``app.input_guards``).

    The generated document is amended (routes are shared between apps and stay untouched).
    """
    from fastapi.dependencies.models import Dependant
    from fastapi.routing import APIRoute, iter_route_contexts

    from app.auth import optional_principal

    def reads_caller(dependant: Dependant) -> bool:
        return any(d.call is optional_principal or reads_caller(d) for d in dependant.dependencies)

    generate = app.openapi
    error_schema = {"$ref": "#/components/schemas/ErrorResponse"}

    def openapi() -> dict[str, Any]:
        document = generate()
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute):
                continue
            implied: list[type[ZooError]] = [ValidationFailed]
            if reads_caller(route.dependant):
                implied.append(Unauthorized)
            if route.body_field is not None:
                implied.append(PayloadTooLarge)
            operations = document.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                for status, entry in error_responses(*implied).items():
                    operation.setdefault("responses", {}).setdefault(
                        str(status),
                        {
                            "description": entry["description"],
                            "content": {"application/json": {"schema": error_schema}},
                        },
                    )
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Render ZooError, request validation errors and stray HTTP errors in the one JSON shape."""

    async def on_zoo_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ZooError)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return render_error(exc.status, exc.code, exc.message, exc.details, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        message = f"invalid {'.'.join(first['loc'][1:]) or 'request'}: {first['msg']}"
        return render_error(422, ValidationFailed.code, message, {"problems": problems})

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        unparsable = _unparsable_body(exc)
        if unparsable is not None:
            return render_error(422, ValidationFailed.code, unparsable, {"problems": []})
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return render_error(exc.status_code, code, str(exc.detail), None, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(
            500, "INTERNAL", "internal server error; the server log has the details"
        )

    app.add_exception_handler(ZooError, on_zoo_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
