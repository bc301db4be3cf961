"""Logging set-up that keeps chat ids, tokens and citizen text out of the logs."""

from __future__ import annotations

import logging
import re

# Long digit runs (chat and user ids, phone numbers) and bot tokens are masked in every record.
_SECRET_PATTERNS = (
    re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"(?<![\d.])\d{7,}(?![\d.])"),
)
_NOISY = (
    "httpx",
    "httpcore",
    "telegram",
    "apscheduler",
    "aiohttp.access",
    "aiosqlite",
    "alembic",
    "PIL",
)


def redact(text: str) -> str:
    """Mask anything that looks like an id, phone number or token."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with ids and tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str) -> None:
    """Log to stderr at the given level; libraries that log request details stay at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
