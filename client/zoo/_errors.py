"""Every error the client raises, in one tree, and the one function that maps server answers
onto it.

    ZooError
    ├── InvalidStubError            (a stub that does not parse; also a ValueError; zoo.stubs)
    ├── APIError                    (the hub answered with an error body: .status .code .details)
    │   ├── BadRequestError         (400: INVALID_STUB, INVALID_PATH, INVALID_MANIFEST, ...)
    │   │   └── DigestMismatchError (400 DIGEST_MISMATCH: uploaded bytes differ from the manifest)
    │   ├── AuthenticationError     (401: no token or a bad one)
    │   ├── PermissionDeniedError   (403: the token lacks the scope or namespace)
    │   ├── NotFoundError           (404)
    │   │   ├── ModelNotFoundError  (404 MODEL_NOT_FOUND; .suggestions: the closest stubs)
    │   │   ├── VersionNotFoundError
    │   │   └── RemoteFileNotFoundError
    │   ├── ConflictError           (409)
    │   │   └── ModelExistsError
    │   ├── RateLimitedError        (429, after the retries)
    │   └── ServerError             (5xx, after the retries)
    ├── NetworkError                (the hub or the store could not be reached, after retries)
    ├── IntegrityError              (downloaded bytes do not match the size or sha256; nothing kept)
    ├── OfflineError                (offline mode and the cache does not hold what was asked)
    ├── CacheLockTimeout            (another process held a cache lock for too long)
    └── LocalModelError             (a local model folder lacks a file, or a publish folder is bad)

Every message says what to do next. Errors chain with ``raise ... from e``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo import stubs

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheLockTimeout",
    "ConflictError",
    "DigestMismatchError",
    "IntegrityError",
    "InvalidStubError",
    "LocalModelError",
    "ModelExistsError",
    "ModelNotFoundError",
    "NetworkError",
    "NotFoundError",
    "OfflineError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RemoteFileNotFoundError",
    "ServerError",
    "VersionNotFoundError",
    "ZooError",
    "error_from_response",
]


class ZooError(Exception):
    """Root of every error the zoo client raises."""


class InvalidStubError(stubs.InvalidStubError, ZooError):
    """A stub does not follow the grammar (the message names the bad part)."""


class APIError(ZooError):
    """The hub answered with an error: ``status``, stable ``code``, ``details``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        details: dict[str, Any] | None = None,
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}
        self.url = url


class BadRequestError(APIError):
    """The hub refused the request as malformed (400)."""


class DigestMismatchError(BadRequestError):
    """Uploaded bytes do not match the size or sha256 the manifest declared."""


class AuthenticationError(APIError):
    """The hub needs a valid token for this (401)."""


class PermissionDeniedError(APIError):
    """The token is valid but may not do this (403)."""


class NotFoundError(APIError):
    """Nothing visible to the caller exists there (404)."""


class ModelNotFoundError(NotFoundError):
    """No model matches the stub; ``suggestions`` holds the hub's closest stubs."""

    @property
    def suggestions(self) -> list[str]:
        """Stubs the hub suggests instead (may be empty)."""
        return [str(s) for s in self.details.get("suggestions") or []]


class VersionNotFoundError(NotFoundError):
    """The model has no ready version with that number or alias."""


class RemoteFileNotFoundError(NotFoundError):
    """The version has no file at that path."""


class ConflictError(APIError):
    """The request conflicts with the hub's state (409)."""


class ModelExistsError(ConflictError):
    """A model with this name or stub already exists."""


class RateLimitedError(APIError):
    """The hub kept answering 429 Too Many Requests."""


class ServerError(APIError):
    """The hub kept failing with a 5xx answer."""


class NetworkError(ZooError):
    """The hub or the object store could not be reached (after the retries)."""


class IntegrityError(ZooError):
    """Downloaded bytes do not match the expected size or sha256; nothing was kept."""


class OfflineError(ZooError):
    """Offline mode is on and the cache does not hold what was asked."""


class CacheLockTimeout(ZooError):
    """Another process held a cache lock longer than the timeout."""


class LocalModelError(ZooError):
    """A local model folder is missing a file or cannot be published as it is."""


# Stable server codes -> client classes; unknown codes fall back on the HTTP status.
_BY_CODE: dict[str, type[APIError]] = {
    "DIGEST_MISMATCH": DigestMismatchError,
    "MODEL_NOT_FOUND": ModelNotFoundError,
    "VERSION_NOT_FOUND": VersionNotFoundError,
    "FILE_NOT_FOUND": RemoteFileNotFoundError,
    "MODEL_EXISTS": ModelExistsError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    416: BadRequestError,
    422: BadRequestError,
    429: RateLimitedError,
}
_NEXT_STEP: dict[type[APIError], str] = {
    AuthenticationError: "log in with 'zoo login' or set ZOO_TOKEN",
    PermissionDeniedError: "ask an admin for a token with write scope on this namespace",
    VersionNotFoundError: "list the versions with 'zoo info STUB'",
    RateLimitedError: "wait a little and try again",
    ServerError: "try again later; if it persists, tell the hub's operator",
}


def error_from_response(response: httpx.Response) -> APIError:
    """The typed exception for an error answer of the hub (or of a store it redirected to).

    The hub's body is ``{"error": {"code", "message", "details"}}``; anything else (a proxy's
    HTML page, an S3 XML error) keeps the status and a short excerpt of the text.
    """
    import httpx  # here, not at the top: `import zoo` stays fast for cached, offline use

    status = response.status_code
    code, message = "", ""
    details: dict[str, Any] = {}
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or "")
            message = str(error.get("message") or "")
            raw = error.get("details")
            details = raw if isinstance(raw, dict) else {}
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        pass
    if not message:
        try:
            excerpt = " ".join(response.text.split())[:200]
        except (UnicodeDecodeError, httpx.ResponseNotRead):
            excerpt = ""
        message = f"HTTP {status} from {response.request.url.host}" + (
            f": {excerpt}" if excerpt else ""
        )
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    hint = _NEXT_STEP.get(cls)
    if hint and hint not in message:
        message = f"{message} ({hint})"
    return cls(message, status=status, code=code, details=details, url=str(response.request.url))
