"""Writes that must not be lost: after a provider call, the database is asked again until it takes the write."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fluxbot.storage import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Pauses between attempts of a write the database refused (locked, disk I/O error, full disk).
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Persistence:
    """Retries store writes with back-off; unhealthy while any write is waiting for the database."""

    def __init__(self, delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.delays = delays
        self._failing: set[int] = set()  # ids of the writes whose last attempt failed
        self._next = 0
        self._stopping = False

    @property
    def healthy(self) -> bool:
        """False while some write cannot reach the database."""
        return not self._failing

    def stop(self) -> None:
        """From now on a refused write is given up (and logged) instead of tried again: the bot is stopping."""
        self._stopping = True

    async def write(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`'s result once the database takes it; raises StoreUnavailable only when stopping."""
        self._next += 1
        key, tries = self._next, 0
        try:
            while True:
                try:
                    return await attempt()
                except StoreUnavailable as exc:
                    if self._stopping:
                        log.error("%s: not saved, the database refused it while the bot stopped (%s)", what, exc)
                        raise
                    self._failing.add(key)
                    pause = self.delays[min(tries, len(self.delays) - 1)] * random.uniform(0.9, 1.1)
                    tries += 1
                    log.warning("%s: the database refused the write (%s); trying again in %.1f s", what, exc, pause)
                    await asyncio.sleep(pause)
        finally:
            self._failing.discard(key)
