"""JSON responses serialized once, by pydantic's core."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(body: BaseModel, status_code: int = 200) -> Response:
    """``body`` as JSON, for routes on the read hot path (resolve, versions, search).

    Returning the model itself makes FastAPI validate it again against ``response_model`` and
    encode it through Python dicts, which costs more than the database work of these routes.
    The route keeps ``response_model=`` so the OpenAPI document still describes the body.
    """
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json")
