"""Tokens are masked in log records without changing their shape (uvicorn's access formatter
unpacks ``record.args``: a record whose args were dropped would fail to format)."""

from __future__ import annotations

import io
import logging

from uvicorn.logging import AccessFormatter

from app import log_redaction

TOKEN = "zoo_" + "s3cr3tT0k3n" * 4


def test_an_access_line_with_a_token_formats_masked() -> None:
    log_redaction.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s"))
    logger = logging.getLogger("uvicorn.access.redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error('%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", f"/m?token={TOKEN}", "1.1", 404)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "GET /m?token=zoo_*** HTTP/1.1 404" in text, text
    assert TOKEN not in text and TOKEN[4:20] not in text
