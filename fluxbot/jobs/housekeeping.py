"""Housekeeping: what the database keeps, and for how long.

Discord's interaction tokens expire 15 minutes after the command: after that a stored token can only leak, so it
is dropped. With a retention (JOB_RETENTION_DAYS), finished jobs older than that are folded into usage totals
(per server, member, UTC day and model) and deleted, so the database stays small however long the bot runs.
"""

from __future__ import annotations

import asyncio
import logging

from fluxbot.jobs.shared import Shared, spawn
from fluxbot.storage import StoreError

log = logging.getLogger(__name__)

#: Discord's lifetime of an interaction token.
TOKEN_LIFETIME = 15 * 60.0
FORGET_TOKENS_EVERY = 60.0
PRUNE_EVERY = 3600.0
#: Jobs one prune statement deletes (one short transaction each: the bot's own writes go on in between).
PRUNE_BATCH = 500
_DAY = 86_400.0


class Housekeeping:
    """Drops expired interaction tokens and prunes jobs past the retention, in the background."""

    def __init__(self, shared: Shared, *, retention_days: int = 0) -> None:
        self._shared = shared
        self.retention_days = retention_days
        self._tokens_at = float("-inf")
        self._pruned_at = float("-inf")
        self._work: set[asyncio.Task[None]] = set()

    def round(self) -> None:
        """Start what is due (each kind once at a time)."""
        now = self._shared.clock()
        if now - self._tokens_at >= FORGET_TOKENS_EVERY and not self._running("fluxbot-tokens"):
            self._tokens_at = now
            spawn(self.forget_tokens(now), "fluxbot-tokens", self._work)
        if self.retention_days and now - self._pruned_at >= PRUNE_EVERY and not self._running("fluxbot-prune"):
            self._pruned_at = now
            spawn(self.prune(now), "fluxbot-prune", self._work)

    def busy(self) -> list[asyncio.Task[None]]:
        """Housekeeping under way."""
        return [task for task in self._work if not task.done()]

    def stop(self) -> None:
        """Stop what is under way (each batch is one transaction: nothing is left half done)."""
        for task in self.busy():
            task.cancel()

    async def forget_tokens(self, now: float) -> None:
        """Drop the tokens of every job whose command is older than Discord keeps its token."""
        try:
            dropped = await self._shared.store.retention.forget_tokens(now - TOKEN_LIFETIME)
        except StoreError as exc:
            log.warning("could not drop expired interaction tokens (%s); trying again later", exc)
            return
        if dropped:
            log.debug("dropped %d expired interaction token(s)", dropped)

    async def prune(self, now: float) -> int:
        """Fold the finished jobs past the retention into usage totals and delete them; how many went."""
        before, pruned = now - self.retention_days * _DAY, 0
        try:
            while (batch := await self._shared.store.retention.prune(before, batch=PRUNE_BATCH)) > 0:
                pruned += batch
                await asyncio.sleep(0)  # let the bot's own work in between batches
        except StoreError as exc:
            log.warning("could not prune old jobs (%s); trying again in an hour", exc)
        if pruned:
            log.info("pruned %d job(s) older than %d days; their counts stay in the usage totals", pruned,
                     self.retention_days)  # fmt: skip
        return pruned

    def _running(self, name: str) -> bool:
        return any(task.get_name() == name for task in self.busy())
