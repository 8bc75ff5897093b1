"""Token request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.input_guards import NoNulBody


class TokenCreate(NoNulBody):
    """Ask for a new token."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, examples=[["read", "write"]])
    namespaces: list[str] | None = Field(
        default=None, description="Limit the token to these namespaces; omit for all."
    )
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class TokenOut(BaseModel):
    """A token as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    namespaces: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """The answer to a creation: the only time the secret is shown."""

    token: str
