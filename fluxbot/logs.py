"""Logging set up once at the entry point, with secrets and interaction tokens scrubbed from every line."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable

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


class RateLimitedLog:
    """At most one line per kind every `seconds`; how many were held back is told in the next line of that kind."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        seconds: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._seconds = seconds
        self._level = level
        self._clock = clock
        self._last: dict[str, float] = {}  # when each kind last wrote a line
        self._held: dict[str, int] = {}  # lines held back since then
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None  # a timer of a loop since closed never fires

    def log(self, kind: str, msg: str, *args: object) -> bool:
        """Log `msg % args` unless a line of `kind` went out less than `seconds` ago; True when it was logged."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._seconds:
            self._held[kind] = self._held.get(kind, 0) + 1
            self._flush_later()
            return False
        held = self._held.pop(kind, 0)
        if held and last is not None:
            msg += " (and %s more in the last %d s)"
            args = (*args, f"{held:,}", _whole_seconds(now - last))
        self._last[kind] = now
        self._logger.log(self._level, msg, *args)
        return True

    def flush(self, *, force: bool = False) -> None:
        """Write one count line for each kind with lines held back whose quiet period is over (any, with `force`)."""
        now = self._clock()
        for kind, held in list(self._held.items()):
            last = self._last[kind]
            if force or now - last >= self._seconds:
                del self._held[kind]
                self._last[kind] = now
                seconds = _whole_seconds(now - last)
                self._logger.log(self._level, "%s more %s in the last %d s", f"{held:,}", kind, seconds)

    def close(self) -> None:
        """Write the counts still held back and stop the timer that would have written them."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush(force=True)

    def _flush_later(self) -> None:
        # A flood that stops is still counted, in one line when its period ends (not only when the next one starts).
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a plain script or test): the count goes into the next line or `close`
        if self._timer is not None and self._timer_loop is loop:
            return
        self._timer_loop = loop
        due = min(self._last[kind] for kind in self._held) + self._seconds
        self._timer = loop.call_later(max(0.0, due - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()
        if self._held:
            self._flush_later()


def _whole_seconds(seconds: float) -> int:
    return max(1, round(seconds))  # "in the last 0 s" would read as "none"


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
