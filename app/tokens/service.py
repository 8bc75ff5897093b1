"""Token rules: secrets are random, only their sha256 is stored, expiry and revocation apply."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import SCOPES, Principal
from app.errors import TokenNotFound, Unauthorized, ValidationFailed
from app.orm import Token, utcnow

TOKEN_PREFIX = "zoo_"


def hash_secret(secret: str) -> str:
    """sha256 of the secret: tokens carry 256 random bits, so a fast hash cannot be brute-forced."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    scopes: Sequence[str],
    namespaces: Sequence[str] | None = None,
    expires_in_days: float | None = None,
) -> tuple[Token, str]:
    """Create a token; returns the row and the secret, which is never retrievable again."""
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise ValidationFailed(
            f"unknown scope(s) {bad or scopes!r}: use one or more of {', '.join(SCOPES)}"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        scopes=sorted(set(scopes)),
        namespaces=sorted(set(namespaces)) if namespaces is not None else None,
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> Principal:
    """Resolve a presented secret to a Principal, or raise 401 (unknown, revoked or expired)."""
    token = session.scalar(select(Token).where(Token.token_hash == hash_secret(secret)))
    if token is None:
        raise Unauthorized("the token is not valid: check it or create a new one")
    now = utcnow()
    if token.revoked_at is not None:
        raise Unauthorized(f"token '{token.name}' was revoked: create a new one")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized(f"token '{token.name}' expired: create a new one")
    return Principal(
        token_id=token.id,
        name=token.name,
        scopes=frozenset(token.scopes),
        namespaces=frozenset(token.namespaces) if token.namespaces is not None else None,
    )


def list_tokens(session: Session) -> Sequence[Token]:
    """Every token, newest first (secrets are not stored, so none is shown)."""
    return session.scalars(select(Token).order_by(Token.id.desc())).all()


def revoke_token(session: Session, token_id: int) -> Token:
    """Revoke a token; it stops working on the next request."""
    token = session.get(Token, token_id)
    if token is None:
        raise TokenNotFound(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token
