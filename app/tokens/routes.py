"""Token endpoints (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.auth import DbSession, RequiredPrincipal, require_admin
from app.errors import Forbidden, TokenNotFound, Unauthorized, error_responses
from app.tokens import service
from app.tokens.schemas import TokenCreate, TokenCreated, TokenOut

router = APIRouter(
    prefix="/tokens", tags=["tokens"], responses=error_responses(Unauthorized, Forbidden)
)


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(
    body: TokenCreate, session: DbSession, principal: RequiredPrincipal
) -> TokenCreated:
    """Create a token. The secret is in this answer only."""
    require_admin(principal)
    token, secret = service.create_token(
        session,
        name=body.name,
        scopes=body.scopes,
        namespaces=body.namespaces,
        expires_in_days=body.expires_in_days,
    )
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.get("", response_model=list[TokenOut])
def list_tokens(session: DbSession, principal: RequiredPrincipal) -> list[TokenOut]:
    """List tokens (without secrets)."""
    require_admin(principal)
    return [TokenOut.model_validate(t) for t in service.list_tokens(session)]


@router.delete("/{token_id}", response_model=TokenOut, responses=error_responses(TokenNotFound))
def revoke_token(
    # Ids are 32-bit columns: a larger number must be refused here, not by the database (500).
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    session: DbSession,
    principal: RequiredPrincipal,
) -> TokenOut:
    """Revoke a token."""
    require_admin(principal)
    return TokenOut.model_validate(service.revoke_token(session, token_id))
