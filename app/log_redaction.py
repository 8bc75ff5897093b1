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


def _masked(value: object) -> object:
    """``value`` with tokens masked: a string stays a string; another object whose text holds
    a token (a URL, a header list) is replaced by its masked text, which formats the same."""
    if isinstance(value, str):
        return redact(value) if TOKEN_PREFIX in value else value
    if isinstance(value, int | float) or value is None:
        return value
    text = str(value)
    return redact(text) if TOKEN_PREFIX in text else value


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
        # Mask the format string and each string argument in place, keeping their shape:
        # formatters such as uvicorn's AccessFormatter unpack ``record.args`` themselves.
        if isinstance(record.msg, str) and TOKEN_PREFIX in record.msg:
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        return record

    factory._zoo_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
