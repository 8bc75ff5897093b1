"""Keep API tokens out of log lines.

The hub reads tokens only from the ``Authorization`` header, which nothing logs below uvicorn's
``trace`` level (where it logs raw headers). But a user may paste a token into a URL
(``?token=zoo_...``) and uvicorn's access log records query strings verbatim, so every log record
of the serving process is made with anything shaped like a token masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from app.tokens.service import TOKEN_PREFIX

# A token is the prefix and 43 urlsafe characters; mask any run after the prefix so a
# truncated or padded token is not left half-visible either.
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]{8,}")
MASK = TOKEN_PREFIX + "***"


def redact(text: str) -> str:
    """``text`` with every token-shaped substring replaced by ``zoo_***``."""
    return _TOKEN.sub(MASK, text)


def install() -> None:
    """Mask tokens in every log record the process creates from now on (idempotent).

    Done in the record factory rather than with a ``logging.Filter``: a filter on a logger sees
    only records logged to that logger itself, not to its children, and handlers are set up by
    uvicorn after the app is built; the factory sees every record of every library (httpx logs
    URLs too) while costing nothing for records below the enabled level, which are never made.
    """
    make = logging.getLogRecordFactory()
    if getattr(make, "_zoo_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: logging reports it when it emits
            return record
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    factory._zoo_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
