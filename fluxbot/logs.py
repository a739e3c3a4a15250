"""Logging set up once at the entry point, with secrets and interaction tokens scrubbed from every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Interaction tokens travel in webhook URLs; discord.py and aiohttp may log those URLs at DEBUG level.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")
# ...and as a `token` field in gateway payloads that discord.py logs at DEBUG level.
_TOKEN_FIELD = re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+""")
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


#: Every secret to scrub, longest first (so a secret containing another is replaced whole).
_SECRETS: list[str] = []


def redact(secret: str) -> None:
    """Scrub `secret` from every log line and from provider text shown to members, from now on."""
    if len(secret) >= 4 and secret not in _SECRETS:
        _SECRETS.append(secret)
        _SECRETS.sort(key=len, reverse=True)


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces known secrets and interaction tokens with `***`."""

    def __init__(self, secrets: Iterable[str], fmt: str = _FORMAT) -> None:
        super().__init__(fmt)
        for secret in secrets:
            redact(secret)

    def format(self, record: logging.LogRecord) -> str:
        """Format the record, then scrub it."""
        return scrub(super().format(record))


def scrub(text: str) -> str:
    """Remove every registered secret and interaction token from `text` (log lines and text shown to members)."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    text = _TOKEN_FIELD.sub(r"\1***", text)
    return _TOKEN_IN_URL.sub(r"\1***", text)


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Send all logs to stderr at `level`, redacted; discord.py's noisy loggers one step quieter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiosqlite logs every statement with its parameters at DEBUG, stored interaction tokens included.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    if level != "DEBUG":
        logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(level)))
        logging.getLogger("discord.gateway").setLevel(logging.WARNING)
