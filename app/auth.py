"""Who is calling: bearer tokens resolved to a Principal, and the rules every route checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.db import get_session
from app.errors import Forbidden, Unauthorized

SCOPES = ("read", "write", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated token: its scopes and (optionally) the namespaces it is limited to."""

    token_id: int
    name: str
    scopes: frozenset[str]
    namespaces: frozenset[str] | None  # None: all namespaces

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def covers(self, namespace: str) -> bool:
        """True when this token's namespace limit includes ``namespace``."""
        return self.is_admin or self.namespaces is None or namespace in self.namespaces

    def can_read_private(self, namespace: str) -> bool:
        """Any scope lets a token see the private models of the namespaces it covers."""
        return bool(self.scopes) and self.covers(namespace)

    def can_write(self, namespace: str) -> bool:
        return self.is_admin or ("write" in self.scopes and self.covers(namespace))


def bearer_secret(request: Request) -> str | None:
    """The token from ``Authorization: Bearer ...``; anything else there is a 401."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


# scope="function": commit (or roll back) before the response is sent, so a client that got
# 201 can read what it created on its very next request.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def optional_principal(request: Request, session: DbSession) -> Principal | None:
    """The caller's principal, or None for anonymous requests. A bad token is never anonymous."""
    from app.tokens.service import authenticate  # tokens imports auth for Principal

    secret = bearer_secret(request)
    if secret is None:
        return None
    return authenticate(session, secret)


def required_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """A principal, or 401 telling the user how to get one."""
    if principal is None:
        raise Unauthorized(
            "this action needs a token: pass 'Authorization: Bearer <token>' "
            "(create one with 'zoo admin create-token' or ask the hub's admin)"
        )
    return principal


def require_write(principal: Principal, namespace: str) -> None:
    """403 unless the token may write to ``namespace``."""
    if not principal.can_write(namespace):
        raise Forbidden(
            f"token '{principal.name}' may not write to namespace '{namespace}': "
            "it needs the 'write' scope for that namespace"
        )


def require_admin(principal: Principal) -> None:
    """403 unless the token has the admin scope."""
    if not principal.is_admin:
        raise Forbidden(f"token '{principal.name}' lacks the 'admin' scope this action needs")


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
RequiredPrincipal = Annotated[Principal, Depends(required_principal)]
